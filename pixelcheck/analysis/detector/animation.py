"""Reading an animation frame by frame: a survey of every frame (does it decode, is it a scene cut), then the
sampled frames through the pixel model, one at a time, into a Timeline and one clip reading for fusion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pixelcheck.analysis.detector.frame_reader import read_frames
from pixelcheck.analysis.detector.image_facts import ImageUnreadable, open_image
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
from pixelcheck.animation_formats import AnimationFacts

_THUMBNAIL = (32, 32)  # what scene cuts are measured on


@dataclass(frozen=True)
class Survey:
    facts: AnimationFacts
    times_ms: tuple[int, ...]  # each frame's start on the timeline
    readable: tuple[bool, ...]  # whether each frame decodes
    plan: tuple[tuple[int, bool], ...]  # (frame index, chosen as a scene cut) of the frames to read


def survey_frames(data: bytes, facts: AnimationFacts, policy: SamplingPolicy) -> Survey:
    """Decodes every frame once, keeping only a thumbnail of the last, and plans which to read.
    Raises ImageUnreadable when no frame decodes."""
    starts = facts.start_times_ms()
    times = tuple(starts[i] if i < len(starts) else facts.duration_ms for i in range(facts.frame_count))
    readable: list[bool] = []
    cuts: list[int] = []
    previous: np.ndarray | None = None
    for frame in read_frames(open_image(data), facts.frame_count):
        readable.append(frame.picture is not None)
        if frame.picture is None:
            continue
        thumbnail = np.asarray(frame.picture.resize(_THUMBNAIL, Image.Resampling.BOX).convert("L"), np.float32)
        if previous is not None and float(np.abs(thumbnail - previous).mean()) > policy.cut_difference:
            cuts.append(frame.index)
        previous = thumbnail
    if not any(readable):
        raise ImageUnreadable("None of the animation's frames could be decoded.")
    plan = plan_samples(times, facts.duration_ms, readable, cuts, policy)
    return Survey(facts, times, tuple(readable), tuple(plan))


def read_timeline(data: bytes, survey: Survey, pixel: PixelModel, threshold: float, policy: SamplingPolicy,
                  on_frame: Callable[[int, int], None]) -> tuple[PixelReading | None, Timeline]:
    """Reads the planned frames with the pixel model (on_frame(done, total) after each) and returns the clip's
    pixel reading and the timeline."""
    wanted = dict(survey.plan)
    readings: list[PixelReading] = []
    verdicts = []
    done = 0
    for frame in read_frames(open_image(data), survey.facts.frame_count, last=max(wanted)):
        if frame.index not in wanted or frame.picture is None:
            continue
        reading = pixel.run(frame.picture)
        done += 1
        on_frame(done, len(wanted))
        if reading is not None:  # None: too small for the model to judge
            readings.append(reading)
            verdicts.append(frame_verdict(frame.index, survey.times_ms[frame.index], reading.prob_ai, threshold,
                                          wanted[frame.index]))
    duration = survey.facts.duration_ms
    segments = ai_segments(verdicts, duration)
    skipped = survey.readable.count(False)
    timeline = Timeline(
        duration_ms=duration,
        frames_in_file=survey.facts.frame_count,
        frames_read=done,
        frames_skipped=skipped,
        sampling_policy=policy.describe(duration),
        frames=tuple(verdicts),
        segments=segments,
        summary=timeline_summary(verdicts, segments, skipped),
    )
    return clip_reading(readings), timeline
