"""Gathers what a report shows (images, their analyses, the owner, the detector) into a ReportDocument."""

from __future__ import annotations

from contextlib import ExitStack

from sqlalchemy import select
from sqlalchemy.orm import Session

from pixelcheck.analysis.detector.verdict import ModelInfo
from pixelcheck.analysis.models import Analysis
from pixelcheck.analysis.records import verdict_of
from pixelcheck.analysis.region_maps import region_map_view
from pixelcheck.blobs import BlobStore
from pixelcheck.blobs.local_copy import local_copy
from pixelcheck.iam.models import User
from pixelcheck.ingestion.models import Image
from pixelcheck.reports.document import EntryState, ReportDocument, ReportEntry
from pixelcheck.reports.models import Report, ReportImage
from pixelcheck.reports.thumbnails import make_thumbnail
from pixelcheck.video_formats import VIDEO_TYPES

BATCH_PREVIEW_SIDE = 512
"""Longest side of the preview kept per image of a batch PDF (rows show small thumbnails)."""


def load_document(session: Session, blobs: BlobStore, report: Report, model: ModelInfo | None,
                  files: ExitStack, spool_dir: str = "") -> ReportDocument:
    """The report's document: one entry per covered image in the requested order.

    An image deleted since the report was requested becomes a DELETED entry named by its kept filename. A video
    clip is never read into memory: it is copied to a temporary file in spool_dir, kept until `files` closes
    for a single PDF (its preview, region map and key frames are read from it), or only while a batch's
    preview is made.
    """
    ids = [ri.image_id for ri in report.images]
    images = {i.id: i for i in session.scalars(select(Image).where(Image.id.in_(ids)))}
    analyses = {a.image_id: a for a in session.scalars(select(Analysis).where(Analysis.image_id.in_(ids)))}
    owner = session.get(User, report.owner_id)
    entries = []
    for covered in report.images:
        image = images.get(covered.image_id)
        if image is None:
            entries.append(_deleted_entry(covered))
            continue
        if image.content_type in VIDEO_TYPES:
            entries.append(_entry(image, analyses.get(image.id),
                                  *_clip_pictures(blobs, report, image.id, files, spool_dir)))
            continue
        entries.append(_entry(image, analyses.get(image.id), _image_bytes(session, blobs, report, image.id)))
    return ReportDocument(
        report_id=report.id,
        title=report.title,
        author=owner.display_name if owner else "",
        created_at=report.create_time,
        entries=tuple(entries),
        model=model,
    )


def _image_bytes(session: Session, blobs: BlobStore, report: Report, image_id: str) -> bytes | None:
    if report.format == "CSV":
        return None  # a CSV shows no pictures
    data = blobs.get(session, f"image/{image_id}")
    if report.scope == "BATCH":
        # Keep only a preview: a hundred 10 MiB uploads must not sit in memory together.
        return make_thumbnail(data, BATCH_PREVIEW_SIDE)
    return data


def _clip_pictures(blobs: BlobStore, report: Report, image_id: str, files: ExitStack,
                   spool_dir: str) -> tuple[bytes | None, str]:
    """What a clip's entry shows, as (image_bytes, clip_path): nothing for a CSV, a batch's preview made from a
    local copy removed at once, and for a single PDF a local copy that lasts until `files` closes (image_bytes
    b"", or None when the clip's bytes are gone)."""
    key = f"image/{image_id}"
    if report.format == "CSV":
        return None, ""
    if report.scope == "BATCH":
        with local_copy(blobs, key, spool_dir) as path:
            return (make_thumbnail(path, BATCH_PREVIEW_SIDE) if path else None), ""
    path = files.enter_context(local_copy(blobs, key, spool_dir))
    return (None, "") if path is None else (b"", path)


def _entry(image: Image, analysis: Analysis | None, data: bytes | None, clip_path: str = "") -> ReportEntry:
    verdict = verdict_of(analysis) if analysis is not None else None
    return ReportEntry(
        image_id=image.id,
        filename=image.filename,
        sha256=image.sha256,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        size_bytes=image.size_bytes,
        state=EntryState(analysis.state) if analysis is not None else EntryState.QUEUED,
        image_bytes=data,
        clip_path=clip_path,
        verdict=verdict,
        analysed_at=analysis.finish_time if analysis is not None else None,
        duration_ms=analysis.duration_ms if analysis is not None else None,
        failure_reason=analysis.failure_reason if analysis is not None else "",
        analysis_id=analysis.id if analysis is not None else "",
        region_map=region_map_view(analysis) if analysis is not None and analysis.region_map_state else None,
    )


def _deleted_entry(covered: ReportImage) -> ReportEntry:
    return ReportEntry(
        image_id=covered.image_id,
        filename=covered.filename,
        sha256="",
        content_type="",
        width=0,
        height=0,
        size_bytes=0,
        state=EntryState.DELETED,
        image_bytes=None,
        verdict=None,
        analysed_at=None,
        duration_ms=None,
    )
