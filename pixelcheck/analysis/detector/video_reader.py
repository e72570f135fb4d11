"""Reading a video clip's frames one at a time with PyAV (FFmpeg), beside frame_reader's animated images.

Packets are demuxed and decoded in order and each frame is handed on before the next is decoded, so a clip never
sits whole in memory. A frame is numbered in decoding output order and timed by its presentation timestamp
(pts x time_base, in ms). A packet the decoder refuses (a corrupt frame in the middle) comes as a frame without
a picture, timed by the packet, and reading goes on. Frames the caller does not want are decoded (later frames
depend on them) but never converted to RGB. At most `max_frames` frames are decoded, and FFmpeg itself is told
the largest frame it may allocate.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

from PIL import Image

from pixelcheck.analysis.detector.frame_reader import DecodedFrame
from pixelcheck.video_formats import DEFAULT_MAX_PIXELS, VideoFacts, VideoUnreadable, open_container

_THUMBNAIL = (32, 32)  # the survey's pictures: all a scene cut is measured on


class VideoFrames:
    """A clip's frames for the timeline (see pixelcheck.analysis.detector.animation.FrameSource)."""

    media_kind = "VIDEO"

    def __init__(self, source: bytes | str, facts: VideoFacts, max_frames: int) -> None:
        self._source = source  # the clip's bytes, or the path of a file holding them
        self.facts = facts
        self._max_frames = max_frames
        self.duration_ms = facts.duration_ms
        self.has_audio = facts.has_audio

    def survey(self) -> Iterator[DecodedFrame]:
        """Every frame, as a small grey-level picture (None when it could not be decoded)."""
        return self._read(None, None, small=True)

    def survey_full(self) -> Iterator[DecodedFrame]:
        """Every frame in RGB, in order (None for a frame that could not be decoded)."""
        return self._read(None, None, small=False)

    def frames(self, wanted: Collection[int]) -> Iterator[DecodedFrame]:
        """The wanted frames in RGB, in order (with picture None for one that could not be decoded)."""
        return self._read(wanted, max(wanted, default=-1), small=False)

    def _read(self, wanted: Collection[int] | None, last: int | None, *, small: bool) -> Iterator[DecodedFrame]:
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
                        yield DecodedFrame(index, None, _ms(packet.pts, base, stream.time_base))
                        index += 1
                    continue
                for frame in decoded:
                    if wanted is None or index in wanted:
                        yield DecodedFrame(index, _picture(frame, small), _ms(frame.pts, base, stream.time_base))
                    index += 1


def _picture(frame: Any, small: bool) -> Image.Image:
    if small:
        return frame.reformat(width=_THUMBNAIL[0], height=_THUMBNAIL[1], format="gray").to_image()
    return frame.to_image()  # RGB


def _ms(pts: int | None, base: int, time_base: Any) -> int:
    if pts is None or time_base is None:
        return 0
    return max(0, int((pts - base) * time_base * 1000))
