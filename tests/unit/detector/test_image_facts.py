"""Decoding defensively and describing the upload."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from pixelcheck.analysis.detector.image_facts import ImageUnreadable, describe, estimate_jpeg_quality, open_image
from tests.unit.detector.synthesized import jpeg_bytes, photo_like, png_bytes


@pytest.mark.parametrize("quality", [30, 50, 70, 85, 95])
def test_jpeg_quality_is_estimated_from_quantisation_tables(quality: int) -> None:
    image = Image.open(io.BytesIO(jpeg_bytes(photo_like(64, 64), quality=quality)))
    assert abs(estimate_jpeg_quality(image.quantization[0]) - quality) <= 1


def test_facts_of_a_png() -> None:
    data = png_bytes(photo_like(80, 60))
    facts = describe(open_image(data), data, has_exif=False)
    assert (facts.format, facts.width, facts.height, facts.size_bytes, facts.jpeg_quality) == (
        "PNG",
        80,
        60,
        len(data),
        None,
    )


@pytest.mark.parametrize("data", [b"", b"not an image", b"\x89PNG\r\n\x1a\n"])
def test_unreadable_bytes_raise_image_unreadable(data: bytes) -> None:
    with pytest.raises(ImageUnreadable):
        open_image(data)


def test_unsupported_format_is_refused() -> None:
    buffer = io.BytesIO()
    photo_like(16, 16).save(buffer, format="GIF")
    with pytest.raises(ImageUnreadable, match="Unsupported"):
        open_image(buffer.getvalue())
