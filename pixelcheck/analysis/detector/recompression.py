"""What sharing does to a picture: the messaging-app copy the stability check compares a verdict with."""

from __future__ import annotations

import io

from PIL import Image

SOCIAL_LONG_SIDE = 1080
SOCIAL_QUALITY = 80


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    """Re-encode as JPEG at the given quality (4:2:0), as sharing platforms do."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def social_copy(image: Image.Image, long_side: int = SOCIAL_LONG_SIDE, quality: int = SOCIAL_QUALITY) -> Image.Image:
    """What messaging apps pass on: long side cut to `long_side` px (never enlarged, bicubic), JPEG at `quality`."""
    factor = long_side / max(image.size)
    if factor < 1:
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        image = image.resize(size, Image.Resampling.BICUBIC)
    return jpeg(image, quality)
