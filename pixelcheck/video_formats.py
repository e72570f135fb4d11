"""Video clips: MP4 and MOV (H.264, H.265/HEVC) and WebM (VP8, VP9, AV1), told apart by their first bytes and
measured by PyAV (FFmpeg) from the container and the codec's headers, before any frame is decoded.

A clip is given to these functions as `source: bytes | str`: its bytes, or the path of a file holding them (a
clip being received, imported or analysed lives in a temporary file, never whole in memory).

MP4 and MOV begin with an ISO-BMFF `ftyp` box (brand `qt  ` for QuickTime); WebM with an EBML header whose
DocType is `webm`. Still HEIF and AVIF files share the `ftyp` box: image_formats sniffs those first.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/webm")
ACCEPTED_VIDEO_NAMES = "MP4 and MOV (H.264, H.265/HEVC) and WebM (VP8, VP9, AV1)"
FORMAT_NAMES = {"video/mp4": "MP4", "video/quicktime": "MOV", "video/webm": "WEBM"}
# FFmpeg's codec ids accepted in each container.
VIDEO_CODECS = {"video/mp4": ("h264", "hevc"), "video/quicktime": ("h264", "hevc"),
                "video/webm": ("vp8", "vp9", "av1")}
CODEC_NAMES = {"h264": "H.264", "hevc": "H.265/HEVC", "vp8": "VP8", "vp9": "VP9", "av1": "AV1"}
_MP4_BRANDS = {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"hvc1", b"M4V ", b"M4VH",
               b"M4VP", b"mmp4", b"MSNV", b"dash", b"3gp4", b"3gp5", b"3gp6", b"3g2a", b"f4v "}
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_DOC_TYPE = 0x4282
DEFAULT_MAX_PIXELS = 8192 * 4320  # the largest frame FFmpeg may allocate while probing, unless told otherwise
_FIRST_FRAME_PACKETS = 64  # packets read for the first frame: a clip none of whose first frames decode is refused


class VideoUnreadable(ValueError):
    """The clip cannot be read: truncated, its index missing, or not a clip at all; the message says how."""


@dataclass(frozen=True)
class VideoFacts:
    content_type: str
    codec: str  # FFmpeg's codec id name: h264, hevc, vp8, vp9, av1 ... (any, as found)
    width: int
    height: int
    duration_ms: int  # as the container declares it (the longest of its own and the video stream's)
    frame_count: int  # declared by the container, else estimated from the duration and the frame rate
    frame_rate: float
    has_audio: bool
    tags: dict[str, str] = field(default_factory=dict)  # the container's metadata, then the video stream's

    @property
    def format_name(self) -> str:
        return FORMAT_NAMES.get(self.content_type, self.content_type)


def sniff_video_type(head: bytes) -> str | None:
    """video/mp4, video/quicktime or video/webm when the first bytes prove it, else None."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        box_end = min(int.from_bytes(head[:4], "big"), len(head))
        major = head[8:12]
        if major == b"qt  ":
            return "video/quicktime"
        brands = {major} | {head[i : i + 4] for i in range(16, box_end - 3, 4)}
        return "video/mp4" if brands & _MP4_BRANDS else None
    if head.startswith(_EBML_MAGIC) and _ebml_doc_type(head) == b"webm":
        return "video/webm"
    return None


def _ebml_doc_type(head: bytes) -> bytes:
    """The DocType of an EBML header (b"" when it is not within the bytes given)."""
    at = len(_EBML_MAGIC)
    size, at = _vint(head, at, strip_marker=True)
    end = min(at + size, len(head))
    while at < end:
        element, at = _vint(head, at, strip_marker=False)
        length, at = _vint(head, at, strip_marker=True)
        if element == _DOC_TYPE:
            return head[at : at + length].rstrip(b"\0")
        at += length
    return b""


def _vint(data: bytes, at: int, *, strip_marker: bool) -> tuple[int, int]:
    """An EBML variable-length integer at `at`: (value, where the next field starts); past the end: (0, len)."""
    if at >= len(data) or data[at] == 0:
        return 0, len(data)
    width = 9 - data[at].bit_length()
    value = int.from_bytes(data[at : at + width], "big")
    if strip_marker:
        value &= (1 << (7 * width)) - 1
    return value, at + width


def open_container(source: bytes | str, **options: Any) -> Any:
    """The clip opened for reading by PyAV: from the file at the path, or from the bytes. Raises av.FFmpegError."""
    import av  # a native library: loaded when the first clip arrives

    return av.open(source if isinstance(source, str) else io.BytesIO(source), mode="r", **options)


def read_head(source: bytes | str, size: int) -> bytes:
    """The clip's first `size` bytes (fewer when it is shorter)."""
    if isinstance(source, bytes):
        return source[:size]
    with open(source, "rb") as fh:
        return fh.read(size)


def probe_video(source: bytes | str, content_type: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> VideoFacts:
    """The clip's facts from its container and codec headers (PyAV), no frame decoded by us. FFmpeg may decode
    a frame to learn them: it allocates no frame over max_pixels (the sizes are still reported), so a tiny
    file declaring enormous frames costs no memory. Raises VideoUnreadable for a truncated file or a missing
    index; a file without a video stream has no frames (frame_count 0)."""
    import av

    try:
        with open_container(source, stream_options=[{"max_pixels": str(max_pixels)}]) as box:
            return _facts(box, content_type)
    except av.FFmpegError as exc:
        raise VideoUnreadable(_truncated_reason(source, content_type)) from exc
    except ValueError:  # PyAV: no stream to apply stream_options to (FFmpeg drops an MP4 track without samples)
        return VideoFacts(content_type=content_type, codec="", width=0, height=0, duration_ms=0, frame_count=0,
                          frame_rate=0.0, has_audio=False)


def _facts(box: Any, content_type: str) -> VideoFacts:
    if not box.streams.video:
        return VideoFacts(content_type=content_type, codec="", width=0, height=0, duration_ms=0, frame_count=0,
                          frame_rate=0.0, has_audio=bool(box.streams.audio))
    video = box.streams.video[0]
    context = video.codec_context  # None when FFmpeg has no decoder for the stream's codec
    codec = context.codec.canonical_name if context is not None and context.codec else ""
    rate = float(video.average_rate or video.guessed_rate or 0)
    container_ms = (box.duration or 0) // 1000
    stream_ms = int(video.duration * video.time_base * 1000) if video.duration and video.time_base else 0
    duration_ms = max(container_ms, stream_ms)
    frames = video.frames or (math.ceil(duration_ms * rate / 1000) if rate else 0)
    tags = {**{str(k): str(v) for k, v in box.metadata.items()},
            **{f"stream:{k}": str(v) for k, v in video.metadata.items()}}
    return VideoFacts(content_type=content_type, codec=codec, width=context.width if context else 0,
                      height=context.height if context else 0, duration_ms=duration_ms, frame_count=frames,
                      frame_rate=rate, has_audio=bool(box.streams.audio), tags=tags)


def first_frame_size(source: bytes | str, max_pixels: int) -> tuple[int, int] | None:
    """The size of the first frame that decodes among the clip's first packets, else None. The bitstream may
    contradict the container: FFmpeg refuses a sequence header declaring frames larger than it can allocate,
    and a frame over max_pixels is not decoded."""
    import av

    try:
        with open_container(source) as box:
            video = box.streams.video[0]
            if video.codec_context is None:
                return None
            video.codec_context.options = {"max_pixels": str(max_pixels)}
            for count, packet in enumerate(box.demux(video)):
                if count >= _FIRST_FRAME_PACKETS:
                    break
                try:
                    for frame in packet.decode():
                        return frame.width, frame.height
                except av.FFmpegError:
                    continue
    except (av.FFmpegError, IndexError):
        return None
    return None


def _truncated_reason(source: bytes | str, content_type: str) -> str:
    """Why FFmpeg could not open the clip, as far as the MP4/MOV box layout tells (box headers are read one at a
    time: a file is never read whole)."""
    if content_type == "video/webm":
        return "the file is truncated or damaged"
    with _readable(source) as (fh, length):
        at, seen = 0, set()
        while at + 8 <= length:
            fh.seek(at)
            header = fh.read(16)
            size, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if size == 1 and at + 16 <= length:
                size = int.from_bytes(header[8:16], "big")
            if size < 8 or at + size > length:
                return f"the file ends inside its {kind.decode('latin-1')!r} box: it was cut off"
            seen.add(kind)
            at += size
    if b"moov" not in seen:
        return "its index (the moov box) is missing: the file was cut off or not finished when it was copied"
    return "the file is damaged"


@contextmanager
def _readable(source: bytes | str) -> Iterator[tuple[IO[bytes], int]]:
    """The clip as a seekable binary file and its length."""
    if isinstance(source, bytes):
        yield io.BytesIO(source), len(source)
        return
    with open(source, "rb") as fh:
        yield fh, os.fstat(fh.fileno()).st_size
