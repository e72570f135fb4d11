"""Reading a video clip's frames one at a time with PyAV (FFmpeg), beside frame_reader's animated images.

Packets are demuxed and decoded in order and each frame is handed on before the next is decoded, so a clip never
sits whole in memory. A frame is numbered in decoding output order and timed by its presentation timestamp
(pts x time_base, in ms). A packet the decoder refuses (a corrupt frame in the middle) comes as a frame without
a picture, timed by the packet, and reading goes on. Frames the caller does not want are decoded (later frames
depend on them) but never converted to RGB; the timeline's pass (stream) shrinks each frame straight from the
decoder's YUV to a 32x32 grey thumbnail and keeps the decoded frame only until the timeline has decided on it.
At most `max_frames` frames are decoded, and FFmpeg itself is told the largest frame it may allocate. The
decoder never skips frames (skip_frame): a frame the timeline reads may be a non-reference B-frame, and every
frame counts for scene cuts and the frame count.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from functools import partial
from typing import Any

import numpy as np
from PIL import Image

from pixelcheck.analysis.detector.frame_reader import THUMBNAIL_SIZE, DecodedFrame, StreamedFrame
from pixelcheck.video_formats import DEFAULT_MAX_PIXELS, VideoFacts, VideoUnreadable, open_container


class VideoFrames:
    """A clip's frames for the timeline (see pixelcheck.analysis.detector.animation.FrameSource)."""

    media_kind = "VIDEO"

    def __init__(self, source: bytes | str, facts: VideoFacts, max_frames: int) -> None:
        self._source = source  # the clip's bytes, or the path of a file holding them
        self.facts = facts
        self._max_frames = max_frames
        self.duration_ms = facts.duration_ms
        self.has_audio = facts.has_audio

    def stream(self) -> Iterator[StreamedFrame]:
        """Every frame once, in order, as a grey thumbnail with its RGB picture made on demand (the timeline's
        single pass)."""
        for index, frame, time_ms in self._read(None):
            if frame is None:
                yield StreamedFrame.undecodable(index, time_ms)
            else:
                yield StreamedFrame(index, time_ms, _thumbnail(frame), partial(_rgb, frame))

    def survey_full(self) -> Iterator[DecodedFrame]:
        """Every frame in RGB, in order (None for a frame that could not be decoded)."""
        for index, frame, time_ms in self._read(None):
            yield DecodedFrame(index, None if frame is None else _rgb(frame), time_ms)

    def frames(self, wanted: Collection[int]) -> Iterator[DecodedFrame]:
        """The wanted frames in RGB, in order (with picture None for one that could not be decoded)."""
        for index, frame, time_ms in self._read(max(wanted, default=-1)):
            if index in wanted:
                yield DecodedFrame(index, None if frame is None else _rgb(frame), time_ms)

    def _read(self, last: int | None) -> Iterator[tuple[int, Any, int]]:
        """(index, decoded frame or None where the packet did not decode, start ms) of each frame up to `last`."""
        import av

        try:
            box = open_container(self._source)
        except av.FFmpegError as exc:
            raise VideoUnreadable("the clip could not be opened") from exc
        with box:
            if not box.streams.video or box.streams.video[0].codec_context is None:
                raise VideoUnreadable("the file holds no video stream that can be decoded")
            stream = box.streams.video[0]
            stream.codec_context.options = {"max_pixels": str(DEFAULT_MAX_PIXELS)}
            stream.thread_count = 1  # a worker process is one core's worth of work (worker_concurrency)
            base = stream.start_time or 0
            index = 0
            for packet in box.demux(stream):
                if (last is not None and index > last) or index >= self._max_frames:
                    return
                try:
                    decoded = packet.decode()
                except av.FFmpegError:
                    if packet.size:  # a damaged frame: counted, skipped; the decoder goes on with the next
                        yield index, None, _ms(packet.pts, base, stream.time_base)
                        index += 1
                    continue
                for frame in decoded:
                    yield index, frame, _ms(frame.pts, base, stream.time_base)
                    index += 1


def _thumbnail(frame: Any) -> np.ndarray:
    # AREA: each thumbnail pixel is the mean of its block, as Pillow's BOX gives animations; straight from YUV
    small = frame.reformat(width=THUMBNAIL_SIZE[0], height=THUMBNAIL_SIZE[1], format="gray", interpolation="AREA")
    return small.to_ndarray().astype(np.float32)


def _rgb(frame: Any) -> Image.Image:
    """The frame in RGB: the same pixels as frame.to_image(), copied once where to_image copies three times."""
    rgb = frame.reformat(format="rgb24")
    plane = rgb.planes[0]
    return Image.frombuffer("RGB", (rgb.width, rgb.height), plane, "raw", "RGB", plane.line_size, 1)


def _ms(pts: int | None, base: int, time_base: Any) -> int:
    if pts is None or time_base is None:
        return 0
    return max(0, int((pts - base) * time_base * 1000))
