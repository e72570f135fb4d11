"""Retention: prune old audit events behind a checkpoint, delete old images and reports with their bytes, and
sweep orphan objects (bytes no row references) out of a blob store that writes outside the transaction.

Both periods are off (0) by default. Audit events are pruned as a prefix of the chain only, so what is
left still verifies from the checkpoint (the last pruned event's id and hash).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.audit.models import AuditCheckpoint, AuditEvent
from pixelcheck.blobs import BlobStore, SweepableBlobStore
from pixelcheck.db import unit_of_work, utcnow
from pixelcheck.ingestion.models import Image
from pixelcheck.reports.models import Report
from pixelcheck.settings import Settings

log = logging.getLogger("pixelcheck.retention")
BATCH_SIZE = 5000  # rows per transaction: keeps locks and undo logs short at any backlog


@dataclass(frozen=True)
class RetentionOutcome:
    audit_events_pruned: int = 0
    images_deleted: int = 0
    reports_deleted: int = 0


def apply_retention(sessions: sessionmaker[Session], blobs: BlobStore, settings: Settings, *,
                    now: datetime | None = None) -> RetentionOutcome:
    """Apply settings.audit_retention_days and settings.image_retention_days (each off when 0)."""
    now = now or utcnow()
    pruned = images = reports = 0
    if settings.audit_retention_days > 0:
        pruned = prune_audit_events(sessions, before=now - timedelta(days=settings.audit_retention_days))
    if settings.image_retention_days > 0:
        cutoff = now - timedelta(days=settings.image_retention_days)
        images = delete_old_images(sessions, blobs, before=cutoff)
        reports = delete_old_reports(sessions, blobs, before=cutoff)
    outcome = RetentionOutcome(pruned, images, reports)
    if pruned or images or reports:
        log.info("retention: %d audit events pruned, %d images and %d reports deleted",
                 pruned, images, reports)
    return outcome


def prune_audit_events(sessions: sessionmaker[Session], *, before: datetime) -> int:
    """Delete the oldest events, up to the first one that occurred at or after `before`.

    Only a prefix of the chain is removed (an event recorded late keeps everything after it), and each
    batch records an AuditCheckpoint with the last pruned event's id and hash in the same transaction.
    """
    with sessions() as session:
        first_kept = session.scalar(select(func.min(AuditEvent.id)).where(AuditEvent.occurred_time >= before))
        last_id = session.scalar(select(func.max(AuditEvent.id)))
    if last_id is None:
        return 0
    prune_through = last_id if first_kept is None else first_kept - 1
    total = 0
    while True:
        with unit_of_work(sessions) as session:
            batch = session.execute(
                select(AuditEvent.id, AuditEvent.hash).where(AuditEvent.id <= prune_through)
                .order_by(AuditEvent.id).limit(BATCH_SIZE)
            ).all()
            if not batch:
                return total
            last_id, last_hash = batch[-1]
            session.add(AuditCheckpoint(last_pruned_event_id=last_id, last_pruned_hash=last_hash,
                                        pruned_count=len(batch)))
            session.execute(delete(AuditEvent).where(AuditEvent.id <= last_id))
            total += len(batch)


def delete_old_images(sessions: sessionmaker[Session], blobs: BlobStore, *, before: datetime) -> int:
    """Delete images created before `before`, their bytes ("image/<id>") and (by cascade) analyses."""
    return _delete_older(sessions, blobs, Image, "image", before)


def delete_old_reports(sessions: sessionmaker[Session], blobs: BlobStore, *, before: datetime) -> int:
    """Delete reports created before `before` and their files ("report/<id>")."""
    return _delete_older(sessions, blobs, Report, "report", before)


def _delete_older(sessions: sessionmaker[Session], blobs: BlobStore, model: type[Image] | type[Report],
                  blob_prefix: str, before: datetime) -> int:
    """Delete rows of model created before `before` with their blobs, in batches; the count deleted."""
    total = 0
    while True:
        with unit_of_work(sessions) as session:
            ids = list(session.scalars(
                select(model.id).where(model.create_time < before).order_by(model.create_time)
                .limit(BATCH_SIZE)))
            if not ids:
                return total
            for row_id in ids:
                blobs.delete(session, f"{blob_prefix}/{row_id}")
            session.execute(delete(model).where(model.id.in_(ids)))
            total += len(ids)


def sweep_orphan_blobs(sessions: sessionmaker[Session], blobs: BlobStore, *, older_than: datetime) -> int:
    """Remove objects written before older_than that no row references: an image's bytes without its image
    row, a report's file without a READY report (a crash between the write and the commit leaves these).
    Keys of other shapes are left alone. A store whose writes are transactional has nothing to sweep: 0.

    The grace period (older_than) must exceed the longest a write can wait for its commit.
    """
    if not isinstance(blobs, SweepableBlobStore):
        return 0
    removed = 0
    for keys in blobs.keys_written_before(older_than):
        wanted: dict[str, set[str]] = {"image": set(), "report": set()}
        for key in keys:
            kind, _, row_id = key.partition("/")
            if kind in wanted and row_id and "/" not in row_id:
                wanted[kind].add(row_id)
        with sessions() as session:
            kept = {f"image/{i}" for i in _existing(session, select(Image.id), Image.id, wanted["image"])}
            kept |= {f"report/{i}" for i in _existing(session, select(Report.id).where(Report.state == "READY"),
                                                      Report.id, wanted["report"])}
        orphans = [k for k in keys if k.partition("/")[0] in wanted and k not in kept]
        if orphans:
            blobs.remove_now(orphans)
            removed += len(orphans)
    if removed:
        log.info("blob sweep: %d orphan object(s) removed", removed)
    return removed


def _existing(session: Session, query: Any, column: Any, ids: set[str]) -> list[str]:
    return list(session.scalars(query.where(column.in_(ids)))) if ids else []
