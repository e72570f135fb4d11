"""The Detector on animations: frames read one at a time on the timeline, broken frames skipped and counted,
scene cuts read, and a clip verdict through the same fusion as a still picture."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops

from pixelcheck.analysis.detector import DEFAULT_MODEL_DIR, Detector, ImageUnreadable, Label, animation, load_detector
from pixelcheck.analysis.detector.frame_reader import DecodedFrame
from tests import images

AI_FRAME = ("data/detector/ai/"
            "dalle-mini__dcsan__imagen__output_renders_huge-purple-octopus-climbing-up-54624381_dmin-1__c0.jpg")
REAL_FRAME = "data/detector/real/bsds500__BIDS__BSDS500__236017__c0.jpg"


@pytest.fixture(scope="module")
def detector() -> Detector:
    return load_detector(DEFAULT_MODEL_DIR)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_each_animated_format_gets_a_timeline(detector: Detector, fmt: str) -> None:
    verdict = detector.analyze(images.animated(fmt, count=12, duration_ms=250))
    timeline = verdict.timeline
    assert timeline is not None and (timeline.duration_ms, timeline.frames_in_file) == (3000, 12)
    assert [(f.index, f.time_ms) for f in timeline.frames] == [(0, 0), (4, 1000), (8, 2000)]
    assert timeline.frames_read == 3 and timeline.frames_skipped == 0
    assert verdict.summary.endswith(timeline.summary) and "One frame per 1 s" in timeline.sampling_policy
    assert verdict.image_facts is not None and verdict.image_facts.format == fmt


def test_a_still_picture_has_no_timeline(detector: Detector) -> None:
    assert detector.analyze(images.png(320, 240)).timeline is None


def test_an_animations_explanation_speaks_of_the_animation_and_a_stills_of_the_image(detector: Detector) -> None:
    animation = detector.analyze(images.animated("GIF", count=4, duration_ms=500)).summary
    assert animation.startswith(("This animation ", "We cannot tell reliably whether this animation "))
    assert "this image" not in animation.lower()
    still = detector.analyze(images.png(320, 240)).summary
    assert still.startswith(("This image ", "We cannot tell reliably whether this image "))


def test_frame_progress_counts_the_frames_read(detector: Detector) -> None:
    seen: list[tuple[int, int]] = []
    detector.analyze(images.animated("WEBP", count=8, duration_ms=500), on_frame=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_a_scene_cut_between_seconds_is_read(detector: Detector) -> None:
    data = images.animated("WEBP", count=10, duration_ms=500, scenes=(0, 3))
    timeline = detector.analyze(data).timeline
    assert timeline is not None
    assert [(f.index, f.scene_cut) for f in timeline.frames] == [(0, False), (2, False), (3, True), (4, False),
                                                                (6, False), (8, False)]


def test_a_corrupt_frame_in_the_middle_is_skipped_and_counted(detector: Detector) -> None:
    verdict = detector.analyze(images.gif_with_corrupt_frame(2, count=6, duration_ms=1000))
    timeline = verdict.timeline
    assert timeline is not None and timeline.frames_skipped == 1
    assert [f.index for f in timeline.frames] == [0, 1, 3, 4, 5]  # frame 2's second is read from frame 3
    assert "1 frame could not be decoded and was skipped." in verdict.summary


def test_a_gif_cut_off_counts_the_lost_frames_as_skipped(detector: Detector) -> None:
    data = images.animated("GIF", count=8, duration_ms=500, width=128, height=128)
    timeline = detector.analyze(data[: len(data) * 6 // 10]).timeline
    assert timeline is not None and timeline.frames_skipped >= 1 and timeline.frames_read >= 1


def test_a_zero_duration_animation_is_timed_at_100_ms_a_frame(detector: Detector) -> None:
    timeline = detector.analyze(images.animated("GIF", count=25, duration_ms=0)).timeline
    assert timeline is not None and timeline.duration_ms == 2500
    assert [f.time_ms for f in timeline.frames] == [0, 1000, 2000]
    assert "timed at 100 ms" in timeline.sampling_policy


def test_an_animation_whose_frames_all_fail_is_unreadable(detector: Detector) -> None:
    with pytest.raises(ImageUnreadable):
        detector.analyze(images.gif_with_corrupt_frame(0, 1, 2, count=3))


def test_frames_too_small_to_judge_say_so(detector: Detector) -> None:
    timeline = detector.analyze(images.animated("GIF", count=4, width=40, height=40)).timeline
    assert timeline is not None and timeline.frames == () and "too small" in timeline.summary


def test_generated_frames_in_the_middle_make_a_segment(detector: Detector,
                                                       shared_file: Callable[[str], Path]) -> None:
    ai, real = (Image.open(shared_file(name)).convert("RGB") for name in (AI_FRAME, REAL_FRAME))
    # Each frame moved a pixel on from the last: the encoder would merge identical frames into one.
    frames = [ImageChops.offset(picture, i, 0) for i, picture in enumerate([real] * 3 + [ai] * 3 + [real] * 2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], duration=1000, lossless=True)
    verdict = detector.analyze(buffer.getvalue())
    timeline = verdict.timeline
    assert timeline is not None
    assert [f.label for f in timeline.frames] == [Label.REAL] * 3 + [Label.AI] * 3 + [Label.REAL] * 2
    assert [(s.start_ms, s.end_ms, s.frame_count) for s in timeline.segments] == [(3000, 6000, 3)]
    assert "Frames 0:03–0:06 read as generated; the rest as camera footage." in verdict.summary


def test_an_animations_frames_are_each_decoded_once_for_its_timeline(detector: Detector,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[int] = []
    real_read_frames = animation.read_frames

    def counting_read_frames(*args: Any, **kwargs: Any) -> Iterator[DecodedFrame]:
        for frame in real_read_frames(*args, **kwargs):
            decoded.append(frame.index)
            yield frame

    monkeypatch.setattr(animation, "read_frames", counting_read_frames)
    timeline = detector.analyze(images.animated("WEBP", count=10, duration_ms=500, scenes=(0, 3))).timeline
    assert timeline is not None and len(timeline.frames) == 6
    assert decoded == list(range(10))  # one pass; the first frame is also opened as a still (facts, watermarks)
