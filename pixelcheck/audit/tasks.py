"""Celery tasks of the audit context: thin, idempotent, scheduled by beat."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

from celery import shared_task

from pixelcheck.audit import actions
from pixelcheck.audit.retention import apply_retention, sweep_orphan_blobs
from pixelcheck.db import utcnow
from pixelcheck.worker import APPLY_RETENTION, SWEEP_ORPHAN_BLOBS, worker_container


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


@shared_task(name=SWEEP_ORPHAN_BLOBS, acks_late=True, ignore_result=True)
def sweep_orphan_blobs_task() -> int:
    """Remove blob-store objects older than the grace period that no row references; safe to run twice."""
    container = worker_container()
    grace = timedelta(seconds=container.settings.blob_orphan_grace_seconds)
    return sweep_orphan_blobs(container.read_sessions, container.blobs, older_than=utcnow() - grace)
