"""Images synthesized with Pillow that carry each provenance format, so tests run without ../shared."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, PngImagePlugin


def photo_like(width: int = 320, height: int = 240, seed: int = 0) -> Image.Image:
    """A smooth gradient with mild noise: enough texture for every stage to run."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=-1)
    noisy = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy)


def png_bytes(image: Image.Image, texts: dict[str, str] | None = None, *, compressed: bool = False) -> bytes:
    """PNG with the given text chunks before the image data (iTXt compressed when asked)."""
    info = PngImagePlugin.PngInfo()
    for key, value in (texts or {}).items():
        if compressed:
            info.add_itxt(key, value, zip=True)
        else:
            info.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def png_with_trailing_text(image: Image.Image, key: str, value: str) -> bytes:
    """PNG whose tEXt chunk sits after IDAT, right before IEND."""
    data = png_bytes(image)
    body = key.encode("latin-1") + b"\0" + value.encode("latin-1")
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    end = data.rfind(b"IEND") - 4
    return data[:end] + chunk + data[end:]


def jpeg_bytes(image: Image.Image, exif: Image.Exif | None = None, quality: int = 90) -> bytes:
    """JPEG with optional EXIF."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, **({"exif": exif.tobytes()} if exif is not None else {}))
    return buffer.getvalue()


def stealth_png(image: Image.Image, text: str) -> bytes:
    """RGBA PNG hiding text in the alpha channel's lowest bits the way A1111 'stealth pnginfo' does."""
    payload = text.encode("utf-8")
    bits = (
        "".join(f"{b:08b}" for b in b"stealth_pnginfo")
        + f"{len(payload) * 8:032b}"
        + "".join(f"{b:08b}" for b in payload)
    )
    width, height = image.size
    alpha = np.full(width * height, 255, dtype=np.uint8)
    alpha[: len(bits)] = 254 + np.array([int(b) for b in bits], dtype=np.uint8)
    rgba = image.convert("RGBA")
    rgba.putalpha(Image.fromarray(alpha.reshape(width, height).T))  # column by column
    buffer = io.BytesIO()
    rgba.save(buffer, format="PNG")
    return buffer.getvalue()


def png_with_many_data_chunks(image: Image.Image, pieces: int, key: str, value: str) -> bytes:
    """PNG whose image data is split into many IDAT chunks, with a tEXt chunk after them."""
    data = png_bytes(image)
    start = data.index(b"IDAT") - 4
    length = struct.unpack(">I", data[start : start + 4])[0]
    payload = data[start + 8 : start + 8 + length]
    step = max(1, -(-len(payload) // pieces))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    idats = b"".join(chunk(b"IDAT", payload[i : i + step]) for i in range(0, len(payload), step))
    text = chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))
    return data[:start] + idats + text + data[start + 12 + length :]
