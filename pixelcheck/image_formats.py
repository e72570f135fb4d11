"""The image formats PixelCheck accepts, told apart by their first bytes, and the decoders that read them.

JPEG, PNG, WEBP, BMP and TIFF are Pillow's own; so is AVIF (Pillow bundles libavif since 11.2). HEIC/HEIF,
what iPhones save by default, is decoded by pillow-heif (libheif), registered with Pillow by
`enable_decoders`. Both ISO-BMFF formats begin with an `ftyp` box whose brands say what the file is; the
brands, not the name or the client's word, decide. TIFF comes in its classic and its BigTIFF layout.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

# media type -> Pillow format name; the order is the order Image.open tries them in.
PILLOW_FORMATS: dict[str, str] = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP",
                                  "image/avif": "AVIF", "image/heic": "HEIF", "image/bmp": "BMP",
                                  "image/tiff": "TIFF"}
ACCEPTED_NAMES = "JPEG, PNG, WEBP, HEIC/HEIF, AVIF, BMP and TIFF"
SNIFF_BYTES = 64  # enough for the ftyp box of every HEIF/AVIF writer seen in practice

_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"heif", b"mif1", b"msf1"}
_TIFF_SIGNATURES = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # classic and BigTIFF, either byte order
_BMP_INFO_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}  # the DIB headers Windows and OS/2 writers use
_registered = False
_register_lock = threading.Lock()


def sniff_content_type(head: bytes) -> str | None:
    """The media type the first bytes prove, or None for anything but the accepted formats."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(_TIFF_SIGNATURES):
        return "image/tiff"
    # "BM" alone is too common a start; the DIB header size that follows makes it a bitmap.
    if head.startswith(b"BM") and int.from_bytes(head[14:18], "little") in _BMP_INFO_HEADER_SIZES:
        return "image/bmp"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        box_end = min(int.from_bytes(head[:4], "big"), len(head))
        brands = {head[8:12]} | {head[i:i + 4] for i in range(16, box_end - 3, 4)}  # major, then compatible
        if brands & _AVIF_BRANDS:
            return "image/avif"
        if brands & _HEIF_BRANDS:
            return "image/heic"
    return None


def enable_decoders() -> None:
    """Registers the HEIC/HEIF decoder with Pillow (once per process; safe from any thread)."""
    global _registered
    if _registered:
        return
    with _register_lock:
        if not _registered:
            from pillow_heif import register_heif_opener  # a native library: loaded when first needed

            register_heif_opener()
            _registered = True


def to_8_bit(image: Image.Image) -> Image.Image:
    """The decoded picture with samples wider than 8 bits scaled into 0..255 (mode L); any other unchanged.

    Pillow's convert() clips such samples at 255, which would turn a 16-bit scan nearly white. Integer
    samples are scaled from the range their bit depth allows (a TIFF's BitsPerSample and SampleFormat, 16
    bits otherwise); float samples are taken as 0..1, the convention of the writers that produce them.
    """
    if image.mode not in ("F", "I") and not image.mode.startswith("I;16"):
        return image
    samples = np.asarray(image, dtype=np.float32)
    samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
    samples *= 255.0 / _largest_sample(image)
    np.clip(samples, 0.0, 255.0, out=samples)
    return Image.fromarray(np.rint(samples).astype(np.uint8), "L")


def _largest_sample(image: Image.Image) -> float:
    if image.mode == "F":
        return 1.0
    bits = min(max(tiff_tag(image, 258, 16), 1), 32)  # BitsPerSample; a PNG has no tags and 16 bits
    signed = tiff_tag(image, 339, 1) == 2  # SampleFormat 2: two's complement integers
    return float(max(2 ** (bits - signed) - 1, 1))


def tiff_tag(image: Image.Image, tag: int, default: int) -> int:
    """The first value of a TIFF tag of the current page (default when absent, or when image is no TIFF)."""
    tags: Mapping[int, Any] = getattr(image, "tag_v2", {})
    value = tags.get(tag, default)
    if isinstance(value, tuple):  # one value per sample
        value = value[0] if value else default
    return int(value)
