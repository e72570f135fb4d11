"""Animated GIF, WebP and PNG (APNG), read from their structure alone: frames, their times and sizes.

The scan walks the file's blocks and chunks without decoding a pixel, so a GIF of 100,000 frames or a frame
declaring 30,000 x 30,000 pixels is measured, and refused, before anything is decoded. It stops counting one
frame past `max_frames`. A still PNG or WebP (no acTL chunk, no animation flag, or a single frame) scans as
None: stills take the path they always took. A GIF is only ever an animation here: a one-frame GIF is not accepted.

Frame times follow what browsers do: a frame that declares under 20 ms is shown for 100 ms.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

GIF_TYPE = "image/gif"
ANIMATED_TYPES = ("image/gif", "image/png", "image/webp")
SHORTEST_FRAME_MS = 20  # below this a frame's declared duration is not honoured ...
PLAYED_FRAME_MS = 100  # ... and the frame is shown this long instead, as Firefox and Chrome do


@dataclass(frozen=True)
class FrameBox:
    """A frame's rectangle on the canvas and how long it is shown."""

    left: int
    top: int
    width: int
    height: int
    duration_ms: int


@dataclass(frozen=True)
class AnimationFacts:
    content_type: str
    width: int  # the canvas
    height: int
    frame_count: int  # frames in the file (declared, for APNG), at most max_frames + 1
    frames: tuple[FrameBox, ...]  # those found, in order (GIF, WebP: every frame; APNG: every fcTL)

    @property
    def duration_ms(self) -> int:
        return sum(frame.duration_ms for frame in self.frames)

    def start_times_ms(self) -> list[int]:
        """When each frame appears on the timeline."""
        times, at = [], 0
        for frame in self.frames:
            times.append(at)
            at += frame.duration_ms
        return times


class AnimationMalformed(ValueError):
    """The animation's structure is broken in a way no decoder can recover from; the message says how."""


def sniff_animation_type(head: bytes) -> str | None:
    """image/gif for a GIF's signature; the other animated types are sniffed as their still formats."""
    return GIF_TYPE if head[:6] in (b"GIF87a", b"GIF89a") else None


def played_ms(declared_ms: int) -> int:
    return PLAYED_FRAME_MS if declared_ms < SHORTEST_FRAME_MS else declared_ms


def scan_animation(data: bytes, content_type: str, max_frames: int) -> AnimationFacts | None:
    """The animation's facts, or None for a still PNG or WebP. Raises AnimationMalformed."""
    if content_type == GIF_TYPE:
        return _scan_gif(data, max_frames)
    if content_type == "image/png":
        return _scan_apng(data, max_frames)
    if content_type == "image/webp":
        return _scan_webp(data, max_frames)
    return None


def _scan_gif(data: bytes, max_frames: int) -> AnimationFacts:
    if len(data) < 13:
        raise AnimationMalformed("the GIF ends inside its header")
    width, height, packed = struct.unpack_from("<HHB", data, 6)
    at = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)
    frames: list[FrameBox] = []
    delay = 0
    while at < len(data) and len(frames) <= max_frames:
        kind = data[at]
        if kind == 0x3B:  # trailer
            break
        if kind == 0x21 and at + 1 < len(data):  # extension: label, then sub-blocks
            if data[at + 1] == 0xF9 and at + 7 < len(data):  # graphic control: the next frame's delay
                delay = struct.unpack_from("<H", data, at + 4)[0] * 10
            at = _skip_sub_blocks(data, at + 2)
        elif kind == 0x2C and at + 10 <= len(data):  # image descriptor
            left, top, w, h, flags = struct.unpack_from("<HHHHB", data, at + 1)
            frames.append(FrameBox(left, top, w, h, played_ms(delay)))
            delay = 0
            at += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
            at = _skip_sub_blocks(data, at + 1)  # after the LZW minimum code size
        else:
            break  # garbage or a cut-off file: the frames found so far are what the file holds
    return AnimationFacts(GIF_TYPE, width, height, len(frames), tuple(frames))


def _skip_sub_blocks(data: bytes, at: int) -> int:
    while at < len(data):
        size = data[at]
        at += 1 + size
        if size == 0:
            break
    return at


def _scan_apng(data: bytes, max_frames: int) -> AnimationFacts | None:
    at, width, height, declared = 8, 0, 0, 0
    frames: list[FrameBox] = []
    while at + 8 <= len(data) and len(frames) <= max_frames:
        length, kind = struct.unpack_from(">I4s", data, at)
        body = data[at + 8 : at + 8 + length]
        if kind == b"IHDR" and len(body) >= 8:
            width, height = struct.unpack_from(">II", body)
        elif kind == b"acTL" and len(body) >= 8:
            declared = struct.unpack_from(">I", body)[0]
        elif kind == b"fcTL" and len(body) >= 26:
            w, h, left, top, num, den = struct.unpack_from(">IIIIHH", body, 4)
            frames.append(FrameBox(left, top, w, h, played_ms(num * 1000 // (den or 100))))
        elif kind == b"IDAT" and not declared:
            return None  # no acTL before the picture: a still PNG
        elif kind == b"IEND":
            break
        at += 12 + length
    count = max(declared, len(frames))
    return AnimationFacts("image/png", width, height, count, tuple(frames)) if count > 1 else None


def _scan_webp(data: bytes, max_frames: int) -> AnimationFacts | None:
    at, width, height = 12, 0, 0
    frames: list[FrameBox] = []
    animated = False
    while at + 8 <= len(data) and len(frames) <= max_frames:
        kind, length = struct.unpack_from("<4sI", data, at)
        body = data[at + 8 : at + 8 + length]
        if kind == b"VP8X" and len(body) >= 10:
            animated = bool(body[0] & 0x02)
            width, height = _u24(body, 4) + 1, _u24(body, 7) + 1
            if not animated:
                return None
        elif kind == b"ANMF" and len(body) >= 16:
            frames.append(FrameBox(_u24(body, 0) * 2, _u24(body, 3) * 2, _u24(body, 6) + 1, _u24(body, 9) + 1,
                                   played_ms(_u24(body, 12))))
        elif kind in (b"VP8 ", b"VP8L") and not animated:
            return None  # a simple (still) WebP
        at += 8 + length + (length & 1)
    if not animated or len(frames) < 2:
        return None
    return AnimationFacts("image/webp", width, height, len(frames), tuple(frames))


def _u24(body: bytes, at: int) -> int:
    return int.from_bytes(body[at : at + 3], "little")
