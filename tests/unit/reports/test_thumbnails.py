"""Report thumbnails: bounded size, pixel limit respected, never an exception on bad bytes."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from pixelcheck.reports.thumbnails import make_thumbnail


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_thumbnail_fits_the_requested_side_and_keeps_aspect(samples, fmt):
    thumb = make_thumbnail(samples.image_bytes(fmt, (800, 400)), 100)

    image = decode(thumb)
    assert image.format == "JPEG"
    assert image.size == (100, 50)


def test_thumbnail_flattens_transparency_on_white():
    rgba = Image.new("RGBA", (40, 40), (255, 0, 0, 0))
    out = io.BytesIO()
    rgba.save(out, format="PNG")

    image = decode(make_thumbnail(out.getvalue(), 40))

    red, green, blue = image.getpixel((20, 20))
    assert min(red, green, blue) > 240


def test_thumbnail_applies_exif_orientation():
    image = Image.new("RGB", (60, 30), (10, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)

    assert decode(make_thumbnail(out.getvalue(), 60)).size == (30, 60)


def test_thumbnail_refuses_images_above_max_image_pixels(samples, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)

    with pytest.warns(Image.DecompressionBombWarning):
        assert make_thumbnail(samples.image_bytes("PNG", (200, 100)), 64) is None
    assert make_thumbnail(samples.image_bytes("PNG", (90, 90)), 64) is not None


@pytest.mark.parametrize(
    "data",
    [
        None,
        b"",
        b"not an image at all",
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00truncated",
        b"\x89PNG\r\n\x1a\n\x00\x00",
    ],
)
def test_thumbnail_of_missing_or_bad_bytes_is_none(data):
    assert make_thumbnail(data, 64) is None


def test_thumbnail_of_a_truncated_real_jpeg_is_none_or_an_image(samples):
    data = samples.image_bytes("JPEG", (400, 300))[:600]

    thumb = make_thumbnail(data, 64)

    assert thumb is None or decode(thumb).size[0] <= 64
