"""Celery tasks of the analysis context: thin, ids in, idempotent."""

from __future__ import annotations

import logging

from celery import shared_task

from pixelcheck.errors import Unavailable
from pixelcheck.worker import ANALYZE_IMAGE, MAP_REGIONS, RECONCILE_ANALYSES, worker_container

log = logging.getLogger("pixelcheck.analysis.tasks")


@shared_task(name=ANALYZE_IMAGE, acks_late=True, autoretry_for=(Unavailable, ConnectionError),
             retry_backoff=True, retry_backoff_max=30, retry_jitter=True, max_retries=8)
def analyze_image(image_id: str) -> str:
    """Analyse one image (a no-op when it is already finished, deleted, or being analysed elsewhere)."""
    container = worker_container()
    try:
        return container.analysis_pipeline.run(image_id)
    finally:
        # A worker has no background audit writer: write "analysis.succeeded"/"analysis.failed" now, before
        # the message is acknowledged, so a worker that exits afterwards loses none.
        container.audit_recorder.flush()


@shared_task(name=MAP_REGIONS, acks_late=True, autoretry_for=(Unavailable, ConnectionError),
             retry_backoff=True, retry_backoff_max=30, retry_jitter=True, max_retries=8)
def map_regions(image_id: str) -> str:
    """Score (the rest of) an image's region map; hands the worker back when verdicts are waiting."""
    return worker_container().region_maps.run(image_id)


@shared_task(name=RECONCILE_ANALYSES, acks_late=True)
def reconcile_analyses() -> int:
    """Re-enqueue analyses stuck in QUEUED or RUNNING, and region maps stuck in PENDING or RUNNING
    (lost by a broker restart or a killed worker)."""
    container = worker_container()
    ids = container.analysis_pipeline.stale_image_ids()
    for image_id in ids:
        container.queue.analyze_image(image_id)
    maps = container.region_maps.stale_image_ids()
    for image_id in maps:
        container.queue.map_regions(image_id)
    if ids or maps:
        log.info("re-enqueued %d stale analyses and %d stale region maps", len(ids), len(maps))
    return len(ids) + len(maps)
