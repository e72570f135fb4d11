"""The timeline rules: how frame readings make the clip's, segments and their sentence (which frames are read:
test_sample_planner)."""

from __future__ import annotations

import pytest

from pixelcheck.analysis.detector.pixel_model import PixelReading
from pixelcheck.analysis.detector.timeline import (
    ai_segments,
    clip_reading,
    clock,
    frame_verdict,
    timeline_summary,
    trimmed_mean,
)
from pixelcheck.analysis.detector.verdict import Label, Segment


def test_segments_cover_the_stretches_read_as_ai_up_to_the_next_frame_read() -> None:
    probs = [0.1, 0.2, 0.9, 0.95, 0.8, 0.1, 0.9]
    frames = [frame_verdict(i, i * 1000, p, 0.5, False) for i, p in enumerate(probs)]
    segments = ai_segments(frames, 7500)
    assert segments == (Segment(2000, 5000, 3, round((0.9 + 0.95 + 0.8) / 3, 4)), Segment(6000, 7500, 1, 0.9))
    assert timeline_summary(frames, segments, 0) == ("Frames 0:02–0:05 and 0:06–0:07.5 read as generated; the rest "
                                                     "as camera footage.")


def test_no_ai_frame_means_no_segment_and_all_ai_says_so() -> None:
    real = [frame_verdict(i, i * 1000, 0.1, 0.5, False) for i in range(3)]
    assert ai_segments(real, 3000) == ()
    assert timeline_summary(real, (), 2) == ("None of the 3 frames read looks generated. 2 frames could not be "
                                             "decoded and were skipped.")
    fake = [frame_verdict(i, i * 1000, 0.9, 0.5, False) for i in range(3)]
    assert timeline_summary(fake, ai_segments(fake, 3000), 0) == "All 3 frames read look generated."


def test_frame_label_follows_the_detector_threshold() -> None:
    assert frame_verdict(0, 0, 0.6, 0.7, False).label is Label.REAL
    assert frame_verdict(0, 0, 0.71, 0.7, True).label is Label.AI


def reading(prob: float, copy: float | None = None, flat: float = 0.1) -> PixelReading:
    return PixelReading(prob, (), 1.0, flat, social_copy_prob_ai=copy)


def test_clip_reading_is_the_trimmed_mean_of_frame_logits() -> None:
    clip = clip_reading([reading(0.9)] * 9 + [reading(0.0001)])  # one glitched frame of ten is cut off
    assert clip is not None and clip.prob_ai == pytest.approx(0.9)
    assert clip.agreement == pytest.approx(0.9) and clip.crop_probs == ()


def test_clip_of_mixed_frames_sits_between_and_its_frames_disagree() -> None:
    clip = clip_reading([reading(0.95)] * 3 + [reading(0.05)] * 3)
    assert clip is not None and clip.prob_ai == pytest.approx(0.5) and clip.agreement <= 0.5


def test_clip_keeps_the_messaging_copy_reading_and_flatness() -> None:
    clip = clip_reading([reading(0.8, copy=0.3, flat=0.7), reading(0.8, copy=0.3, flat=0.7)])
    assert clip is not None and clip.flips_when_shared and clip.out_of_domain
    assert clip_reading([]) is None


def test_trimmed_mean_and_clock() -> None:
    assert trimmed_mean([1, 2, 3, 4, 5, 6, 7, 8, 9, 100]) == pytest.approx(5.5)
    assert trimmed_mean([3.0]) == 3.0
    assert (clock(0), clock(4000), clock(62_500), clock(600_000)) == ("0:00", "0:04", "1:02.5", "10:00")
