"""What a report is made of, as plain values: the renderers (PDF, CSV) read only these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pixelcheck.analysis.detector.regions import RegionMapView
from pixelcheck.analysis.detector.verdict import ModelInfo, Verdict


class EntryState(StrEnum):
    """Where one image of a report stands when the report is rendered."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    DELETED = "DELETED"  # the image was deleted after it was added; a verdict may survive it


@dataclass(frozen=True)
class ReportEntry:
    """One image of a report with its analysis outcome, if any."""

    image_id: str
    filename: str
    sha256: str
    content_type: str
    width: int
    height: int
    size_bytes: int
    state: EntryState
    image_bytes: bytes | None  # original upload bytes for the thumbnail (None when the image was deleted)
    verdict: Verdict | None  # set when SUCCEEDED
    analysed_at: datetime | None  # finish time (UTC, tz-aware)
    duration_ms: int | None
    failure_reason: str = ""
    analysis_id: str = ""
    clip_path: str = ""  # a video clip in a single PDF (image_bytes b""): its local copy's path, while it renders

    @property
    def picture(self) -> bytes | str | None:
        """What the entry's pictures are drawn from: the upload's bytes, or a clip's local copy (its path)."""
        return self.clip_path or self.image_bytes
    region_map: RegionMapView | None = None  # where in the image the pixel model sees generation traces


@dataclass(frozen=True)
class ReportDocument:
    """A report as it is rendered: a titled list of entries plus the detector serving at build time."""

    report_id: str
    title: str
    author: str  # the owner's display name
    created_at: datetime
    entries: tuple[ReportEntry, ...]
    model: ModelInfo | None  # the detector serving when the report was built
