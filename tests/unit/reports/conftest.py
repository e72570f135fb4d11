"""Report fixtures: hand-built verdicts with realistic evidence and real small images made with Pillow."""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from PIL import Image, ImageDraw

from pixelcheck.analysis.detector.verdict import (
    Band,
    ImageFacts,
    Label,
    ModelInfo,
    Provenance,
    Signal,
    SignatureState,
    Verdict,
)
from pixelcheck.reports.document import EntryState, ReportDocument, ReportEntry

MODEL_VERSION = "2.3.1"
WEIGHTS_SHA256 = "9f2c4be1d7a05c3e8b6f1a2d4c6e8f0a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e"


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (320, 240), seed: int = 0) -> bytes:
    """Return a real encoded picture: a gradient sky over a darker ground with a sun."""
    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        shade = int(255 * y / max(1, height - 1))
        draw.line([(0, y), (width, y)], fill=((60 + seed * 40) % 256, 120 + shade // 3, 255 - shade // 2))
    draw.rectangle([0, height * 2 // 3, width, height], fill=(40, 90 + seed * 20 % 100, 40))
    draw.ellipse(
        [width // 5, height // 6, width // 5 + height // 4, height // 6 + height // 4], fill=(250, 220, 80)
    )
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def ai_verdict(confidence: float = 0.93, band: Band = Band.HIGH) -> Verdict:
    """Return an AI verdict with the evidence a generated PNG typically shows."""
    return Verdict(
        label=Label.AI,
        prob_ai=confidence,
        confidence=confidence,
        band=band,
        model_version=MODEL_VERSION,
        signals=(
            Signal(
                "Pixel model",
                0.91,
                0.55,
                "The neural network found texture patterns typical of diffusion models.",
            ),
            Signal("Generator metadata", 0.99, 0.25, "The file names an AI image generator in its settings."),
            Signal("Camera data", 0.62, 0.10, "There is no camera make, model or exposure information."),
            Signal("Compression history", 0.35, 0.10, "The file was saved once, as cameras and editors do."),
        ),
        provenance=Provenance(
            generator_metadata=("AUTOMATIC1111 parameters in PNG text chunk",),
            generator_name="Stable Diffusion",
            software="",
        ),
        image_facts=ImageFacts(format="PNG", width=320, height=240, size_bytes=48_213, has_exif=False),
        summary="The pixels and the file's own metadata both point to an AI image generator.",
    )


def real_verdict(confidence: float = 0.81, band: Band = Band.MEDIUM) -> Verdict:
    """Return a REAL verdict for a camera JPEG with Content Credentials."""
    return Verdict(
        label=Label.REAL,
        prob_ai=round(1 - confidence, 6),
        confidence=confidence,
        band=band,
        model_version=MODEL_VERSION,
        signals=(
            Signal("Pixel model", 0.22, 0.6, "Sensor noise and lens blur look like those of a real camera."),
            Signal("Content Credentials", 0.05, 0.3, "Signed credentials say a camera captured this image."),
            Signal("Camera data", 0.2, 0.1, "The file records a camera make, model and exposure settings."),
        ),
        provenance=Provenance(
            c2pa_present=True,
            c2pa_claim_generator="Leica M11-P firmware 2.1",
            c2pa_digital_source_type="http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture",
            c2pa_signature=SignatureState.VALID,
            c2pa_signer="Leica Camera AG",
            camera_make="Leica",
            camera_model="M11-P",
            software="Adobe Lightroom 7.1",
        ),
        image_facts=ImageFacts(
            format="JPEG", width=320, height=240, size_bytes=21_774, jpeg_quality=92, has_exif=True
        ),
        summary="The image carries valid camera credentials and its pixels look like a photograph.",
    )


def entry(
    image_id: str = "img-0001",
    filename: str = "beach.jpg",
    state: EntryState = EntryState.SUCCEEDED,
    verdict: Verdict | None = None,
    data: bytes | None = None,
    **changes: Any,
) -> ReportEntry:
    """Return a report entry; a SUCCEEDED one gets an AI verdict and a JPEG unless told otherwise."""
    if data is None and state is not EntryState.DELETED:
        data = image_bytes(seed=len(image_id))
    if verdict is None and state is EntryState.SUCCEEDED:
        verdict = ai_verdict()
    base = ReportEntry(
        image_id=image_id,
        filename=filename,
        sha256=hashlib.sha256(data or image_id.encode()).hexdigest(),
        content_type="image/jpeg",
        width=320,
        height=240,
        size_bytes=len(data) if data else 18_432,
        state=state,
        image_bytes=data,
        verdict=verdict,
        analysed_at=datetime(2025, 11, 26, 15, 50, 12, tzinfo=UTC) if verdict else None,
        duration_ms=840 if verdict else None,
        analysis_id=f"an-{image_id}" if verdict else "",
    )
    return replace(base, **changes)


def model_info() -> ModelInfo:
    """Return the detector description a report carries."""
    return ModelInfo(
        name="PixelCheck ViT-S detector",
        version=MODEL_VERSION,
        weights_sha256=WEIGHTS_SHA256,
        threshold=0.5,
        input_description="RGB, 224×224 centre crop",
        training_data="Public real photographs and images from eight generators",
        metrics={"auroc": 0.97},
    )


def document(
    entries: tuple[ReportEntry, ...], title: str = "Newsroom check", author: str = "Zoë Ørsted"
) -> ReportDocument:
    """Return a report over the entries."""
    return ReportDocument(
        report_id="rep-7f3a",
        title=title,
        author=author,
        created_at=datetime(2025, 11, 27, 9, 5, tzinfo=UTC),
        entries=entries,
        model=model_info(),
    )


class Samples:
    """The builders above, handed to tests as one fixture."""

    image_bytes = staticmethod(image_bytes)
    ai_verdict = staticmethod(ai_verdict)
    real_verdict = staticmethod(real_verdict)
    entry = staticmethod(entry)
    model_info = staticmethod(model_info)
    document = staticmethod(document)
    MODEL_VERSION = MODEL_VERSION
    WEIGHTS_SHA256 = WEIGHTS_SHA256


@pytest.fixture
def samples() -> type[Samples]:
    """Builders for verdicts, entries, documents and images."""
    return Samples
