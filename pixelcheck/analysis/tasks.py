"""Celery tasks of the analysis context: thin, ids in, idempotent."""

from __future__ import annotations

import logging

from celery import shared_task

from pixelcheck.errors import Unavailable
from pixelcheck.worker import ANALYZE_IMAGE, MAP_REGIONS, RECONCILE_ANALYSES, RUN_NEXT, worker_container

log = logging.getLogger("pixelcheck.analysis.tasks")


@shared_task(name=RUN_NEXT, acks_late=True, autoretry_for=(Unavailable, ConnectionError),
             retry_backoff=True, retry_backoff_max=30, retry_jitter=True, max_retries=8)
def run_next() -> str:
    """Run the fair queue's next item (an analysis, or a region map a report waits for), whoever's it is."""
    container = worker_container()
    try:
        outcome = container.fair_dispatcher.run_next()
    finally:
        # A worker has no background audit writer: write "analysis.succeeded"/"analysis.failed" now, before
        # the message is acknowledged, so a worker that exits afterwards loses none.
        container.audit_recorder.flush()
    container.fair_dispatcher.fill_idle()  # nothing else waiting: make an unrequested region map
    return outcome


@shared_task(name=ANALYZE_IMAGE, acks_late=True, autoretry_for=(Unavailable, ConnectionError),
             retry_backoff=True, retry_backoff_max=30, retry_jitter=True, max_retries=8)
def analyze_image(image_id: str) -> str:
    """Analyse one named image (tasks sent before the fair queue; a no-op when it is already finished,
    deleted, or being analysed elsewhere)."""
    container = worker_container()
    try:
        return container.analysis_pipeline.run(image_id)
    finally:
        container.audit_recorder.flush()


@shared_task(name=MAP_REGIONS, acks_late=True, autoretry_for=(Unavailable, ConnectionError),
             retry_backoff=True, retry_backoff_max=30, retry_jitter=True, max_retries=8)
def map_regions(image_id: str, idle: bool = False, frame_index: int | None = None) -> str:
    """Score (the rest of) an image's region map (or of its frame `frame_index`): a requested one to the end, an
    idle-time one until other work waits."""
    container = worker_container()
    if idle:
        outcome = container.region_maps.run(image_id, idle=True, frame=frame_index)
    else:  # somebody waits for it: on the prompt lane, ahead of the backlog on the CPU
        outcome = container.fair_dispatcher.promptly(
            lambda: container.region_maps.run(image_id, idle=False, frame=frame_index))
    container.metrics.region_map_runs.labels("idle" if idle else "requested", outcome).inc()
    if idle:
        container.fair_dispatcher.fill_idle()
    return outcome


@shared_task(name=RECONCILE_ANALYSES, acks_late=True)
def reconcile_analyses() -> int:
    """Re-enqueue what a broker restart or a killed worker lost (see pixelcheck.analysis.reconciler)."""
    return worker_container().reconciler.run()
