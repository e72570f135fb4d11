"""Gathers what a report shows (images, their analyses, the owner, the detector) into a ReportDocument."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from pixelcheck.analysis.detector.verdict import ModelInfo
from pixelcheck.analysis.models import Analysis
from pixelcheck.analysis.records import verdict_of
from pixelcheck.analysis.region_maps import region_map_view
from pixelcheck.blobs import BlobStore
from pixelcheck.iam.models import User
from pixelcheck.ingestion.models import Image
from pixelcheck.reports.document import EntryState, ReportDocument, ReportEntry
from pixelcheck.reports.models import Report, ReportImage
from pixelcheck.reports.thumbnails import make_thumbnail

BATCH_PREVIEW_SIDE = 512
"""Longest side of the preview kept per image of a batch PDF (rows show small thumbnails)."""


def load_document(session: Session, blobs: BlobStore, report: Report,
                  model: ModelInfo | None) -> ReportDocument:
    """The report's document: one entry per covered image in the requested order.

    An image deleted since the report was requested becomes a DELETED entry named by its kept filename.
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


def _entry(image: Image, analysis: Analysis | None, data: bytes | None) -> ReportEntry:
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
