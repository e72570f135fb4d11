"""Generator and camera traces in ordinary metadata: PNG text chunks, XMP, EXIF, A1111 stealth info.

Parsers walk the container bytes themselves (PNG chunks anywhere in the file, JPEG APP segments, WebP
chunks) with hard caps on how much they read or inflate, so a crafted file costs bounded time and memory.
"""

from __future__ import annotations

import gzip
import io
import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

_MAX_TEXT = 1 << 20  # bytes kept per inflated text chunk
_MAX_CHUNKS = 4096
_MAX_XMP = 4 << 20
_STEALTH_SIGNATURES = {b"stealth_pnginfo": False, b"stealth_pngcomp": True}
_STEALTH_MAX_BITS = 8 * (1 << 20)

# Names of generators as they appear in Software / CreatorTool / free text (lower case).
GENERATOR_NAMES = (
    "midjourney",
    "dall-e",
    "dall·e",
    "dalle",
    "stable diffusion",
    "stablediffusion",
    "novelai",
    "firefly",
    "imagen",
    "ideogram",
    "leonardo.ai",
    "comfyui",
    "invokeai",
    "automatic1111",
    "fooocus",
    "gpt-4o",
    "chatgpt",
    "sora",
    "flux",
    "gemini",
    "bing image creator",
    "nightcafe",
    "dreamstudio",
    "playground ai",
)
_CAPTURE_TAGS = {33434: "exposure time", 33437: "f-number", 34855: "ISO", 37386: "focal length", 36867: "capture date"}
# A TIFF's own directory is read as its EXIF: only these say a camera (not the pixel layout) was described.
_TIFF_CAMERA_TAGS = (271, 272, 306, 0x8769, 0x8825)  # Make, Model, DateTime, Exif IFD, GPS IFD


@dataclass(frozen=True)
class MetadataFindings:
    generator_traces: tuple[str, ...] = ()  # human-readable, e.g. "ComfyUI workflow in PNG text chunk"
    generator_name: str = ""
    xmp_source_type: str = ""
    camera_make: str = ""
    camera_model: str = ""
    camera_capture_fields: tuple[str, ...] = ()
    software: str = ""
    has_exif: bool = False


def _inflate(data: bytes) -> bytes:
    """zlib-inflate at most _MAX_TEXT bytes (defuses decompression bombs)."""
    try:
        return zlib.decompressobj().decompress(data, _MAX_TEXT)
    except zlib.error:
        return b""


def png_text_chunks(data: bytes) -> tuple[dict[str, str], bytes | None]:
    """All tEXt/zTXt/iTXt entries of a PNG, wherever they sit (also after IDAT), and its eXIf payload."""
    texts: dict[str, str] = {}
    exif: bytes | None = None
    position, seen = 8, 0
    while position + 8 <= len(data) and seen < _MAX_CHUNKS:
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        seen += kind != b"IDAT"  # image data chunks are skipped, not parsed: only the others are capped
        if kind == b"tEXt" and b"\0" in body:
            key, value = body.split(b"\0", 1)
            texts[key.decode("latin-1")] = value[:_MAX_TEXT].decode("latin-1")
        elif kind == b"zTXt" and b"\0" in body:
            key, rest = body.split(b"\0", 1)
            texts[key.decode("latin-1")] = _inflate(rest[1:]).decode("latin-1")
        elif kind == b"iTXt" and b"\0" in body:
            key, rest = body.split(b"\0", 1)
            compressed = rest[:1] == b"\1"
            parts = rest[2:].split(b"\0", 2)  # language tag, translated keyword, text
            if len(parts) == 3:
                text = _inflate(parts[2]) if compressed else parts[2][:_MAX_TEXT]
                texts[key.decode("latin-1")] = text.decode("utf-8", "replace")
        elif kind == b"eXIf":
            exif = body
        elif kind == b"IEND":
            break
    return texts, exif


def xmp_packets(data: bytes) -> list[str]:
    """XMP packets found anywhere in the bytes (JPEG APP1, PNG iTXt, WebP XMP chunk all embed them verbatim)."""
    packets: list[str] = []
    start = data.find(b"<x:xmpmeta")
    while start != -1 and len(packets) < 8:
        end = data.find(b"</x:xmpmeta>", start, start + _MAX_XMP)
        if end == -1:
            break
        packets.append(data[start : end + 12].decode("utf-8", "replace"))
        start = data.find(b"<x:xmpmeta", end)
    return packets


def _xmp_value(packet: str, name: str) -> str:
    """Value of an XMP property written as attribute or element, namespace prefix ignored."""
    match = (
        re.search(rf'[\w-]+:{name}\s*=\s*"([^"]*)"', packet)  # attribute
        or re.search(rf'<[\w-]+:{name}\s+rdf:resource\s*=\s*"([^"]*)"', packet)  # resource reference
        or re.search(rf"<[\w-]+:{name}>\s*(?:<rdf:\w+>\s*<rdf:li[^>]*>)?([^<]*)<", packet)  # element
    )
    return match.group(1).strip() if match else ""


def _decode_user_comment(value: object) -> str:
    """EXIF UserComment: 8-byte charset prefix then text (UNICODE is UTF-16, big or little endian)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, bytes):
        return ""
    prefix, body = value[:8], value[8:]
    if prefix.startswith(b"UNICODE"):
        for codec in ("utf-16-be", "utf-16-le"):
            text = body.decode(codec, "replace")
            if text.isprintable() or "\n" in text:
                return text
        return body.decode("utf-16-be", "replace")
    return body.decode("utf-8", "replace").strip("\0 ")


def generator_in(text: str) -> str:
    """The first known generator name mentioned in text, '' when none."""
    lowered = text.lower()
    return next((name for name in GENERATOR_NAMES if name in lowered), "")


def _text_chunk_traces(texts: dict[str, str]) -> list[tuple[str, str]]:
    """(trace, generator) pairs recognised in PNG text chunks."""
    traces: list[tuple[str, str]] = []
    keys = set(texts)
    parameters = texts.get("parameters", "")
    if "fooocus_scheme" in keys or ("parameters" in keys and "fooocus" in parameters.lower()):
        traces.append(("Fooocus parameters in PNG text chunk", "Fooocus"))
    elif parameters and ("Steps:" in parameters or "Sampler:" in parameters or "Seed:" in parameters):
        traces.append(
            ("Stable Diffusion web UI (AUTOMATIC1111/Forge) parameters in PNG text chunk", "Stable Diffusion")
        )
    elif parameters:
        traces.append(("generation parameters in PNG text chunk", "Stable Diffusion"))
    if {"prompt", "workflow"} & keys and any(
        t.lstrip().startswith("{") for t in (texts.get("prompt", ""), texts.get("workflow", ""))
    ):
        traces.append(("ComfyUI prompt/workflow in PNG text chunk", "ComfyUI"))
    if {"invokeai_metadata", "invokeai_graph", "sd-metadata", "Dream"} & keys:
        traces.append(("InvokeAI metadata in PNG text chunk", "InvokeAI"))
    if texts.get("Software", "").lower().startswith("novelai") or "AI generated image" in texts.get("Title", ""):
        traces.append(("NovelAI metadata in PNG text chunk", "NovelAI"))
    description = texts.get("Description", "")
    if "Job ID:" in description and (
        "--v " in description or "--ar " in description or "midjourney" in description.lower()
    ):
        traces.append(("Midjourney job description in PNG text chunk", "Midjourney"))
    return traces


def stealth_parameters(image: Image.Image) -> str:
    """A1111 'stealth pnginfo': parameters hidden in the alpha channel's lowest bits, column by column."""
    if image.mode != "RGBA":
        return ""
    alpha = np.asarray(image.getchannel("A"))
    height = alpha.shape[0]

    def first_bits(count: int) -> np.ndarray:
        # Only the leading columns are transposed: the payload is read column by column from the left.
        columns = alpha[:, : -(-count // max(height, 1))]
        return (columns.T.ravel()[:count] & 1).astype(np.uint8)

    bits = first_bits(152)
    if bits.size < 152:
        return ""
    signature = np.packbits(bits[:120]).tobytes()
    if signature not in _STEALTH_SIGNATURES:
        return ""
    length = int("".join(map(str, bits[120:152])), 2)
    if length <= 0 or length > _STEALTH_MAX_BITS or 152 + length > alpha.size:
        return ""
    bits = first_bits(152 + length)
    payload = np.packbits(bits[152 : 152 + length]).tobytes()
    if _STEALTH_SIGNATURES[signature]:
        try:
            payload = gzip.GzipFile(fileobj=io.BytesIO(payload)).read(_MAX_TEXT)
        except (OSError, EOFError, zlib.error):
            return ""
    return payload.decode("utf-8", "replace")


def _has_exif(exif: Image.Exif | None, image: Image.Image | None) -> bool:
    if not exif:
        return False
    if image is not None and image.format == "TIFF":
        return any(tag in exif for tag in _TIFF_CAMERA_TAGS)
    return True


def scan_metadata(data: bytes, image: Image.Image | None) -> MetadataFindings:
    """Every generator and camera trace in the file's metadata; image is the opened (not converted) picture."""
    traces: list[tuple[str, str]] = []
    exif_blob: bytes | None = None
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        texts, exif_blob = png_text_chunks(data)
        traces += _text_chunk_traces(texts)
    xmp_source_type, xmp_make, xmp_model, xmp_tool = "", "", "", ""
    for packet in xmp_packets(data):
        xmp_source_type = xmp_source_type or _xmp_value(packet, "DigitalSourceType").rsplit("/", 1)[-1]
        xmp_make = xmp_make or _xmp_value(packet, "Make")
        xmp_model = xmp_model or _xmp_value(packet, "Model")
        xmp_tool = xmp_tool or _xmp_value(packet, "CreatorTool")
    make, model, software, user_comment, capture = "", "", "", "", []
    exif = None
    if image is not None:
        try:
            exif = image.getexif()
        except Exception:  # malformed EXIF is common and says nothing about the picture
            exif = None
    if exif is None and exif_blob:
        exif = Image.Exif()
        try:
            exif.load(exif_blob)
        except Exception:
            exif = None
    if exif:
        make, model = str(exif.get(271, "")).strip("\0 "), str(exif.get(272, "")).strip("\0 ")
        software = str(exif.get(305, "")).strip("\0 ")
        try:
            sub = exif.get_ifd(0x8769)
        except Exception:
            sub = {}
        capture = [label for tag, label in _CAPTURE_TAGS.items() if tag in sub]
        user_comment = _decode_user_comment(sub.get(37510, b""))
    if "Steps:" in user_comment and ("Sampler:" in user_comment or "Seed:" in user_comment):
        traces.append(
            ("Stable Diffusion web UI (AUTOMATIC1111/Forge) parameters in EXIF UserComment", "Stable Diffusion")
        )
    for field_name, value in (("EXIF Software", software), ("XMP CreatorTool", xmp_tool)):
        name = generator_in(value)
        if name:
            traces.append((f"{field_name} names a generator ({value.strip()[:60]})", name.title()))
    if image is not None and stealth_parameters(image):
        traces.append(
            ("Stable Diffusion web UI parameters hidden in the alpha channel (stealth PNG info)", "Stable Diffusion")
        )
    return MetadataFindings(
        generator_traces=tuple(dict.fromkeys(trace for trace, _ in traces)),
        generator_name=traces[0][1] if traces else "",
        xmp_source_type=xmp_source_type,
        camera_make=make or xmp_make,
        camera_model=model or xmp_model,
        camera_capture_fields=tuple(capture),
        software=software or xmp_tool,
        has_exif=_has_exif(exif, image),
    )
