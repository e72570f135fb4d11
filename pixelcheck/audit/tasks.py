"""Celery tasks of the audit context: thin, idempotent, scheduled by beat."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from pixelcheck.audit import actions
from pixelcheck.audit.retention import apply_retention
from pixelcheck.worker import APPLY_RETENTION, worker_container


@shared_task(name=APPLY_RETENTION, acks_late=True, ignore_result=True)
def apply_retention_task() -> dict[str, int]:
    """Apply the configured retention periods (each off when 0); safe to run twice."""
    container = worker_container()
    outcome = apply_retention(container.sessions, container.blobs, container.settings)
    if any(asdict(outcome).values()):
        container.audit_recorder.record(actions.RETENTION_APPLIED, payload=asdict(outcome))
    # Workers do not run the recorder's writer thread: write what this task recorded before returning.
    container.audit_recorder.flush()
    return asdict(outcome)
