"""Reading an animation or a video clip frame by frame: a survey of every frame (does it decode, when does it
show, is it a scene cut), then the sampled frames through the pixel model, one at a time, into a Timeline and
one clip reading for fusion. Where the frames come from is a FrameSource: AnimationFrames here for animated
GIF, WebP and PNG, VideoFrames (video_reader) for clips."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
from PIL import Image

from pixelcheck.analysis.detector.frame_reader import DecodedFrame, read_frames
from pixelcheck.analysis.detector.image_facts import ImageUnreadable, decode_rgb, open_image
from pixelcheck.analysis.detector.pixel_model import PixelModel, PixelReading
from pixelcheck.analysis.detector.timeline import (
    SamplingPolicy,
    ai_segments,
    clip_reading,
    frame_verdict,
    plan_samples,
    timeline_summary,
)
from pixelcheck.analysis.detector.verdict import Timeline
from pixelcheck.analysis.detector.video_reader import VideoFrames
from pixelcheck.animation_formats import AnimationFacts
from pixelcheck.image_formats import SNIFF_BYTES
from pixelcheck.video_formats import VideoUnreadable, probe_video, read_head, sniff_video_type

_THUMBNAIL = (32, 32)  # what scene cuts are measured on


class FrameSource(Protocol):
    """The frames of one animation or clip, read again from the start on each call."""

    media_kind: str  # ANIMATED or VIDEO
    duration_ms: int
    has_audio: bool

    def survey(self) -> Iterator[DecodedFrame]:
        """Every frame, timed, in order; its picture may be small (it is only measured for scene cuts)."""
        ...

    def frames(self, wanted: Collection[int]) -> Iterator[DecodedFrame]:
        """The wanted frames in RGB, in order."""
        ...


class AnimationFrames:
    """An animated GIF, WebP or PNG's frames, timed as browsers play them (animation_formats)."""

    media_kind = "ANIMATED"
    has_audio = False

    def __init__(self, data: bytes, facts: AnimationFacts) -> None:
        self._data = data
        self._facts = facts
        self.duration_ms = facts.duration_ms
        starts = facts.start_times_ms()
        self._times = [starts[i] if i < len(starts) else facts.duration_ms for i in range(facts.frame_count)]

    def survey(self) -> Iterator[DecodedFrame]:
        return self._read(None)

    def frames(self, wanted: Collection[int]) -> Iterator[DecodedFrame]:
        return (frame for frame in self._read(max(wanted, default=-1)) if frame.index in wanted)

    def _read(self, last: int | None) -> Iterator[DecodedFrame]:
        for frame in read_frames(open_image(self._data), self._facts.frame_count, last=last):
            yield replace(frame, time_ms=self._times[frame.index])


@dataclass(frozen=True)
class Survey:
    source: FrameSource
    times_ms: tuple[int, ...]  # each frame's start on the timeline
    readable: tuple[bool, ...]  # whether each frame decodes
    plan: tuple[tuple[int, bool], ...]  # (frame index, chosen as a scene cut) of the frames to read


def survey_frames(source: FrameSource, policy: SamplingPolicy) -> Survey:
    """Decodes every frame once, keeping only a thumbnail of the last, and plans which to read.
    Raises ImageUnreadable when no frame decodes."""
    times: list[int] = []
    readable: list[bool] = []
    cuts: list[int] = []
    previous: np.ndarray | None = None
    for frame in source.survey():
        times.append(max(frame.time_ms, times[-1]) if times else frame.time_ms)  # B-frames: kept in order
        readable.append(frame.picture is not None)
        if frame.picture is None:
            continue
        thumbnail = np.asarray(frame.picture.resize(_THUMBNAIL, Image.Resampling.BOX).convert("L"), np.float32)
        if previous is not None and float(np.abs(thumbnail - previous).mean()) > policy.cut_difference:
            cuts.append(frame.index)
        previous = thumbnail
    if not any(readable):
        noun = "clip" if source.media_kind == "VIDEO" else "animation"
        raise ImageUnreadable(f"None of the {noun}'s frames could be decoded.")
    plan = plan_samples(times, source.duration_ms, readable, cuts, policy)
    return Survey(source, tuple(times), tuple(readable), tuple(plan))


def read_timeline(survey: Survey, pixel: PixelModel, threshold: float, policy: SamplingPolicy,
                  on_frame: Callable[[int, int], None]) -> tuple[PixelReading | None, Timeline]:
    """Reads the planned frames with the pixel model (on_frame(done, total) after each) and returns the clip's
    pixel reading and the timeline."""
    wanted = dict(survey.plan)
    readings: list[PixelReading] = []
    verdicts = []
    done = 0
    for frame in survey.source.frames(wanted):
        if frame.picture is None:
            continue
        reading = pixel.run(frame.picture)
        done += 1
        on_frame(done, len(wanted))
        if reading is not None:  # None: too small for the model to judge
            readings.append(reading)
            verdicts.append(frame_verdict(frame.index, survey.times_ms[frame.index], reading.prob_ai, threshold,
                                          wanted[frame.index]))
    source = survey.source
    segments = ai_segments(verdicts, source.duration_ms)
    skipped = survey.readable.count(False)
    video = source.media_kind == "VIDEO"
    summary = timeline_summary(verdicts, segments, skipped, video=video)
    if source.has_audio:
        summary += " The clip's sound was not analysed: only its pictures were."
    timeline = Timeline(
        duration_ms=source.duration_ms,
        frames_in_file=len(survey.readable),
        frames_read=done,
        frames_skipped=skipped,
        sampling_policy=policy.describe(source.duration_ms, video=video),
        frames=tuple(verdicts),
        segments=segments,
        summary=summary,
        media_kind=source.media_kind,
        has_audio=source.has_audio,
    )
    return clip_reading(readings), timeline


def picked_frames(source: bytes | str, wanted: Collection[int]) -> Iterator[DecodedFrame]:
    """The wanted frames, in RGB and in order, of an animation's or a video clip's bytes, or of a clip's file at
    the path (key frames of a report)."""
    video_type = sniff_video_type(read_head(source, SNIFF_BYTES))
    if video_type is not None:
        yield from VideoFrames(source, probe_video(source, video_type), max(wanted, default=0) + 1).frames(wanted)
        return
    if isinstance(source, str):
        raise ImageUnreadable("Only a video clip is read from a file.")
    data = source
    with open_image(data) as image:
        yield from (f for f in read_frames(image, max(wanted, default=0) + 1) if f.index in wanted)


def first_picture(source: bytes | str) -> Image.Image:
    """The picture a region map is made of, in RGB: a still's pixels, an animation's first frame as Pillow opens
    it, a clip's first frame that decodes (the clip's bytes or the path of its file). Raises ImageUnreadable."""
    video_type = sniff_video_type(read_head(source, SNIFF_BYTES))
    if video_type is None:
        if isinstance(source, str):
            raise ImageUnreadable("Only a video clip is read from a file.")
        return decode_rgb(open_image(source))
    try:
        clip = probe_video(source, video_type)
        first = next((f.picture for f in VideoFrames(source, clip, clip.frame_count).survey_full() if f.picture),
                     None)
    except VideoUnreadable as error:
        raise ImageUnreadable(f"The video clip could not be read: {error}.") from error
    if first is None:
        raise ImageUnreadable("None of the clip's frames could be decoded.")
    return first


def frame_picture(source: bytes | str, index: int) -> Image.Image:
    """Frame `index` (numbered as the timeline numbers frames) of an animation's or a clip's bytes, or of the file
    at a path, in RGB: the file is read from its start up to that frame, one frame at a time. Raises
    ImageUnreadable when the file has no such frame or it does not decode."""
    try:
        picture = next((f.picture for f in picked_frames(source, {index}) if f.index == index), None)
    except VideoUnreadable as error:
        raise ImageUnreadable(f"The video clip could not be read: {error}.") from error
    if picture is None:
        raise ImageUnreadable(f"Frame {index} could not be decoded.")
    return picture
