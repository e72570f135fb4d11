"""Decoding an upload defensively and describing it: format, size, JPEG quality, EXIF presence."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

from pixelcheck.analysis.detector.verdict import ImageFacts
from pixelcheck.image_formats import ACCEPTED_NAMES, enable_decoders, to_8_bit

MAX_PIXELS = 60_000_000  # uploads are capped at 50 MP; anything larger is refused, not decoded
_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "AVIF": "AVIF", "HEIF": "HEIF",
            "BMP": "BMP", "TIFF": "TIFF", "GIF": "GIF"}

# IJG reference luminance table (JPEG Annex K), in natural order; quality is estimated against it.
_STANDARD_LUMINANCE = np.array(
    [
        16,
        11,
        10,
        16,
        24,
        40,
        51,
        61,
        12,
        12,
        14,
        19,
        26,
        58,
        60,
        55,
        14,
        13,
        16,
        24,
        40,
        57,
        69,
        56,
        14,
        17,
        22,
        29,
        51,
        87,
        80,
        62,
        18,
        22,
        37,
        56,
        68,
        109,
        103,
        77,
        24,
        35,
        55,
        64,
        81,
        104,
        113,
        92,
        49,
        64,
        78,
        87,
        103,
        121,
        120,
        101,
        72,
        92,
        95,
        98,
        112,
        100,
        103,
        99,
    ],
    dtype=np.float64,
)


class ImageUnreadable(Exception):
    """The bytes are not an image this service can decode; the message is meant for the user."""


def estimate_jpeg_quality(luminance_table: list[int] | tuple[int, ...]) -> int | None:
    """IJG-equivalent quality (1..100) of a luminance quantisation table (natural order, as Pillow gives it)."""
    if len(luminance_table) != 64:
        return None
    table = np.asarray(luminance_table, dtype=np.float64)
    scale = float(np.mean(table * 100.0 / _STANDARD_LUMINANCE))
    quality = 5000.0 / scale if scale > 100 else (200.0 - scale) / 2.0
    return int(min(100, max(1, round(quality))))


def open_image(data: bytes) -> Image.Image:
    """Open (lazily) the upload, refusing what is not a supported, sane image."""
    if not data:
        raise ImageUnreadable("The file is empty.")
    enable_decoders()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Exception as error:
        raise ImageUnreadable("The file is not an image this service can read.") from error
    still_gif = image.format == "GIF" and not getattr(image, "is_animated", False)  # GIFs come as animations only
    if image.format not in _FORMATS or still_gif:
        raise ImageUnreadable(f"Unsupported image format {image.format or 'unknown'}; use {ACCEPTED_NAMES}.")
    if image.width * image.height > MAX_PIXELS:
        raise ImageUnreadable("The image has more pixels than this service analyses.")
    return image


def decode_rgb(image: Image.Image) -> Image.Image:
    """Fully decode; returns the picture in RGB mode (the same object when it already is: no 36 MB copy).

    16-bit and float samples are scaled to 8 bits first (to_8_bit), not clipped.
    """
    try:
        image.load()
        return image if image.mode == "RGB" else to_8_bit(image).convert("RGB")
    except Exception as error:
        raise ImageUnreadable("The image data is damaged and could not be decoded.") from error


def describe(image: Image.Image, data: bytes, has_exif: bool) -> ImageFacts:
    """ImageFacts for an opened upload."""
    quality = None
    tables = getattr(image, "quantization", None)
    if tables:
        quality = estimate_jpeg_quality(list(tables.get(0, ())))
    return ImageFacts(
        format=_FORMATS.get(image.format or "", image.format or ""),
        width=image.width,
        height=image.height,
        size_bytes=len(data),
        jpeg_quality=quality,
        has_exif=has_exif,
    )
