"""Celery task that builds a report: the report id in, the use case called, nothing else."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from pixelcheck.errors import Unavailable
from pixelcheck.worker import BUILD_REPORT, worker_container


@shared_task(name=BUILD_REPORT, bind=True, acks_late=True, autoretry_for=(Unavailable,), retry_backoff=True,
             max_retries=5)
def build_report(self: Any, report_id: str) -> None:
    """Build report_id (idempotent: a READY or FAILED report is left alone)."""
    container = worker_container()
    try:
        container.reports.build(report_id)
    finally:
        container.audit_recorder.flush()  # a worker has no background audit writer: write "report.ready" now
