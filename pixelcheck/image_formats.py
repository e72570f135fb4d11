"""The image formats PixelCheck accepts, told apart by their first bytes, and the decoders that read them.

JPEG, PNG and WEBP are Pillow's own; so is AVIF (Pillow bundles libavif since 11.2). HEIC/HEIF, what
iPhones save by default, is decoded by pillow-heif (libheif), registered with Pillow by `enable_decoders`.
Both ISO-BMFF formats begin with an `ftyp` box whose brands say what the file is; the brands, not the
name or the client's word, decide.
"""

from __future__ import annotations

import threading

# media type -> Pillow format name; the order is the order Image.open tries them in.
PILLOW_FORMATS: dict[str, str] = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP",
                                  "image/avif": "AVIF", "image/heic": "HEIF"}
ACCEPTED_NAMES = "JPEG, PNG, WEBP, HEIC/HEIF and AVIF"
SNIFF_BYTES = 64  # enough for the ftyp box of every HEIF/AVIF writer seen in practice

_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"heif", b"mif1", b"msf1"}
_registered = False
_register_lock = threading.Lock()


def sniff_content_type(head: bytes) -> str | None:
    """The media type the first bytes prove, or None for anything but the accepted formats."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
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
