"""Small previews of uploaded images for the reports, decoded with bounded memory."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from pixelcheck.image_formats import SNIFF_BYTES, enable_decoders, to_8_bit
from pixelcheck.video_formats import sniff_video_type

THUMBNAIL_QUALITY = 85


def image_pixel_limit() -> int | None:
    """Return the largest pixel count a thumbnail is made from: Image.MAX_IMAGE_PIXELS, read per call."""
    limit = Image.MAX_IMAGE_PIXELS
    return int(limit) if limit else None


def make_thumbnail(data: bytes | str | None, max_side: int) -> bytes | None:
    """Return a JPEG preview of an image at most max_side pixels on its longer side, or None. `data` is the
    upload's bytes, or the path of a video clip's local copy.

    None means "preview unavailable": no bytes, bytes Pillow cannot read, or an image above
    Image.MAX_IMAGE_PIXELS (checked from the header, before any pixel is decoded). A JPEG is
    decoded at a reduced scale (draft mode), so memory stays near the thumbnail size; other formats
    are bounded by the pixel limit. EXIF orientation is applied, 16-bit samples are scaled to 8 bits and
    transparency is flattened on white. Never raises for bad image bytes.
    """
    if not data or max_side < 1:
        return None
    if isinstance(data, str) or sniff_video_type(data[:SNIFF_BYTES]) is not None:
        return _clip_thumbnail(data, max_side)
    enable_decoders()  # HEIC uploads
    try:
        with Image.open(io.BytesIO(data)) as image:
            limit = image_pixel_limit()
            width, height = image.size
            if width < 1 or height < 1 or (limit is not None and width * height > limit):
                return None
            if image.format == "JPEG":
                image.draft("RGB", (max_side, max_side))
            oriented = to_8_bit(ImageOps.exif_transpose(image))
            oriented.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            rgb = _flatten(oriented)
            out = io.BytesIO()
            rgb.save(out, format="JPEG", quality=THUMBNAIL_QUALITY)
            return out.getvalue()
    except Exception:  # noqa: BLE001 - corrupt uploads raise many kinds of errors; a report must still render
        return None


def _clip_thumbnail(data: bytes | str, max_side: int) -> bytes | None:
    """A video clip's preview: its first frame that decodes (FFmpeg allocates no frame over the probe's limit)."""
    from pixelcheck.analysis.detector.animation import first_picture  # the detector's reader of frames
    from pixelcheck.analysis.detector.image_facts import ImageUnreadable

    try:
        picture = first_picture(data)
    except ImageUnreadable:
        return None
    picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=THUMBNAIL_QUALITY)
    return out.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    """Return image as RGB, compositing any transparency on a white background."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")
