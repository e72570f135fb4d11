"""Reading an animation or a video clip frame by frame, in one pass: every frame is decoded once, timed, shrunk to
a grey thumbnail (does it decode, is it a scene cut), and the frames the sampling policy chooses go through the
pixel model as soon as they are chosen, one at a time, into a Timeline and one clip reading for fusion. Where the
frames come from is a FrameSource: AnimationFrames here for animated GIF, WebP and PNG, VideoFrames
(video_reader) for clips."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

from pixelcheck.analysis.detector.frame_reader import THUMBNAIL_SIZE, DecodedFrame, StreamedFrame, read_frames
from pixelcheck.analysis.detector.image_facts import ImageUnreadable, decode_rgb, open_image
from pixelcheck.analysis.detector.pixel_model import PixelModel, PixelReading
from pixelcheck.analysis.detector.timeline import (
    Pick,
    SamplePlanner,
    SamplingPolicy,
    ai_segments,
    clip_reading,
    frame_verdict,
    timeline_summary,
)
from pixelcheck.analysis.detector.verdict import FrameVerdict, Timeline
from pixelcheck.analysis.detector.video_reader import VideoFrames
from pixelcheck.animation_formats import AnimationFacts
from pixelcheck.image_formats import SNIFF_BYTES
from pixelcheck.video_formats import VideoUnreadable, probe_video, read_head, sniff_video_type


class FrameSource(Protocol):
    """The frames of one animation or clip."""

    media_kind: str  # ANIMATED or VIDEO
    duration_ms: int
    has_audio: bool

    def stream(self) -> Iterator[StreamedFrame]:
        """Every frame once, timed, in order, with its grey thumbnail and its RGB picture on demand."""
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

    def stream(self) -> Iterator[StreamedFrame]:
        for frame in read_frames(open_image(self._data), self._facts.frame_count):
            time_ms = self._times[frame.index]
            if frame.picture is None:
                yield StreamedFrame.undecodable(frame.index, time_ms)
                continue
            grey = frame.picture.resize(THUMBNAIL_SIZE, Image.Resampling.BOX).convert("L")
            yield StreamedFrame(frame.index, time_ms, np.asarray(grey, np.float32), _kept(frame.picture))


def _kept(picture: Image.Image) -> Callable[[], Image.Image]:
    return lambda: picture  # Pillow composes each frame in RGB anyway: nothing is left to make


@dataclass
class _Tally:
    frames: int = 0
    undecodable: int = 0


def _chosen_frames(source: FrameSource, policy: SamplingPolicy, planner: SamplePlanner,
                   tally: _Tally) -> Iterator[tuple[StreamedFrame, int, Pick]]:
    """(frame, its time on the timeline, why it is read) of each frame the planner chooses, as soon as it is chosen:
    a frame is decided when the next one's start arrives, so only it and the next are held. Counts into tally."""
    held: tuple[StreamedFrame, int, bool] | None = None  # (frame, time, is a scene cut) waiting for the next start
    previous: np.ndarray | None = None  # the thumbnail of the last frame that decoded
    for frame in source.stream():
        tally.frames += 1
        time_ms = max(frame.time_ms, held[1]) if held else frame.time_ms  # B-frames' packets: kept in order
        cut = False
        if frame.thumbnail is None:
            tally.undecodable += 1
        else:
            cut = previous is not None and float(np.abs(frame.thumbnail - previous).mean()) > policy.cut_difference
            previous = frame.thumbnail
        if held is not None:
            pick = planner.choose(held[0].readable, held[2], time_ms)
            if pick is not None:
                yield held[0], held[1], pick
        held = (frame, time_ms, cut)
    if held is not None:
        pick = planner.choose(held[0].readable, held[2], None)
        if pick is not None:
            yield held[0], held[1], pick


def read_timeline(source: FrameSource, pixel: PixelModel, threshold: float, policy: SamplingPolicy,
                  on_frame: Callable[[int, int], None],
                  on_first: Callable[[Image.Image], None] = lambda picture: None,
                  ) -> tuple[PixelReading | None, Timeline]:
    """Decodes the source's frames once and reads the frames the policy chooses with the pixel model as they pass
    (SamplePlanner), each dropped once read. on_first(picture) gets the first frame read, in RGB; on_frame(done,
    total) is called after each frame read, total being the planned grid frames (less those known to share a
    frame or to have none) plus the scene cuts chosen so far: it may rise or fall and is exact at the end. Returns
    the clip's pixel reading and the timeline. Raises ImageUnreadable when no frame decodes, and VideoUnreadable
    when a clip's container cannot be read."""
    planner = SamplePlanner(source.duration_ms, policy)
    tally = _Tally()
    readings: list[PixelReading] = []
    verdicts: list[FrameVerdict] = []
    done = total = 0
    for frame, time_ms, pick in _chosen_frames(source, policy, planner, tally):
        index, picture = frame.index, frame.rgb()
        if not done:
            on_first(picture)
        reading = pixel.run(picture)
        del frame, picture  # neither the decoder's picture nor the RGB one (25 MB at 4K) waits for the next pick
        done += 1
        total = max(planner.expected_frames, done)
        on_frame(done, total)
        if reading is not None:  # None: too small for the model to judge
            readings.append(reading)
            verdicts.append(frame_verdict(index, time_ms, reading.prob_ai, threshold, pick is Pick.SCENE_CUT))
    if tally.undecodable == tally.frames:
        noun = "clip" if source.media_kind == "VIDEO" else "animation"
        raise ImageUnreadable(f"None of the {noun}'s frames could be decoded.")
    if total != done:  # the last frames read were counted against grid times that turned out to have none
        on_frame(done, done)
    segments = ai_segments(verdicts, source.duration_ms)
    video = source.media_kind == "VIDEO"
    summary = timeline_summary(verdicts, segments, tally.undecodable, video=video)
    if source.has_audio:
        summary += " The clip's sound was not analysed: only its pictures were."
    timeline = Timeline(
        duration_ms=source.duration_ms,
        frames_in_file=tally.frames,
        frames_read=done,
        frames_skipped=tally.undecodable,
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
