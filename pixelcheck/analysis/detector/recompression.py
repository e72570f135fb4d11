"""What sharing does to a picture: the messaging-app copy the stability check compares a verdict with."""

from __future__ import annotations

import io

from PIL import Image

SOCIAL_LONG_SIDE = 1080
SOCIAL_QUALITY = 80


def jpeg_bytes(image: Image.Image, quality: int) -> bytes:
    """The picture encoded as JPEG at the given quality (4:2:0), without metadata."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    """Re-encode as JPEG at the given quality (4:2:0), as sharing platforms do."""
    return Image.open(io.BytesIO(jpeg_bytes(image, quality))).convert("RGB")


def _shrunk(image: Image.Image, long_side: int) -> Image.Image:
    factor = long_side / max(image.size)
    if factor >= 1:
        return image
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.BICUBIC)


def social_copy_bytes(image: Image.Image, long_side: int = SOCIAL_LONG_SIDE, quality: int = SOCIAL_QUALITY) -> bytes:
    """The file messaging apps pass on: long side cut to `long_side` px (never enlarged, bicubic), JPEG."""
    return jpeg_bytes(_shrunk(image, long_side), quality)


def social_copy(image: Image.Image, long_side: int = SOCIAL_LONG_SIDE, quality: int = SOCIAL_QUALITY) -> Image.Image:
    """The decoded picture of social_copy_bytes()."""
    return jpeg(_shrunk(image, long_side), quality)
