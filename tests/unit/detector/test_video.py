"""Video clips through the detector: frames read one at a time on the animation's timeline, timed by their
presentation timestamps, corrupt frames skipped and counted, sound noted as not analysed, and the container's
provenance (a phone's tags, a generator's own tag, a C2PA manifest) in the verdict."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixelcheck.analysis.detector import DEFAULT_MODEL_DIR, Detector, ImageUnreadable, SignatureState, load_detector
from pixelcheck.analysis.detector.animation import frame_picture
from pixelcheck.analysis.detector.container_tags import scan_container_tags
from pixelcheck.analysis.detector.video_reader import VideoFrames
from pixelcheck.video_formats import probe_video
from tests import images, videos
from tests.c2pa_signing import sign


@pytest.fixture(scope="module")
def detector() -> Detector:
    return load_detector(DEFAULT_MODEL_DIR)


@pytest.mark.parametrize("kind", sorted(videos.KINDS.keys() - {"mp4-mpeg4"}))
def test_each_accepted_kind_of_clip_gets_a_timeline_timed_in_milliseconds(detector: Detector, kind: str) -> None:
    frames_read = []
    verdict = detector.analyze(videos.clip(kind, seconds=3, fps=10, width=128, height=96),
                               on_frame=lambda done, total: frames_read.append((done, total)))
    timeline = verdict.timeline
    assert timeline is not None and timeline.media_kind == "VIDEO" and not timeline.has_audio
    assert (timeline.duration_ms, timeline.frames_in_file, timeline.frames_skipped) == (3000, 30, 0)
    assert [(f.index, f.time_ms) for f in timeline.frames] == [(0, 0), (10, 1000), (20, 2000)]
    assert frames_read == [(1, 3), (2, 3), (3, 3)]
    assert "timed by their presentation timestamps" in timeline.sampling_policy
    assert verdict.summary.endswith(timeline.summary)
    assert verdict.image_facts is not None and verdict.image_facts.format == kind.split("-")[0].upper()


def test_a_clips_explanation_speaks_of_the_clip_not_of_an_image(detector: Detector) -> None:
    summary = detector.analyze(videos.clip("mp4-h264", seconds=2, width=128, height=96)).summary
    assert re.match(r"(This clip (was|is) (very likely|probably) |We cannot tell reliably whether this clip )", summary)
    assert "this image" not in summary.lower()


def test_corrupt_frames_in_the_middle_are_skipped_and_counted(detector: Detector) -> None:
    clip = videos.with_corrupt_frames(videos.clip("mp4-h264", seconds=3, width=128, height=96), 10, 3)
    timeline = detector.analyze(clip).timeline
    assert timeline is not None and timeline.frames_skipped == 3 and timeline.frames_in_file == 30
    assert [f.time_ms for f in timeline.frames] == [0, 1100, 2000]  # frame 10 is broken: the next one stands in
    assert "3 frames could not be decoded and were skipped." in timeline.summary


def test_a_clip_with_sound_says_the_sound_was_not_analysed(detector: Detector) -> None:
    verdict = detector.analyze(videos.clip("mp4-h264", seconds=2, audio=True))
    assert verdict.timeline is not None and verdict.timeline.has_audio
    assert verdict.summary.endswith("The clip's sound was not analysed: only its pictures were.")


def test_a_phones_container_tags_name_the_camera(detector: Detector) -> None:
    tags = {"com.apple.quicktime.make": "Apple", "com.apple.quicktime.model": "iPhone 15 Pro",
            "com.apple.quicktime.creationdate": "2026-05-01T10:00:00+0200"}
    verdict = detector.analyze(videos.clip("mov-hevc", seconds=1, tags=tags))
    assert (verdict.provenance.camera_make, verdict.provenance.camera_model) == ("Apple", "iPhone 15 Pro")
    assert any(s.name == "camera_metadata" for s in verdict.signals)


def test_android_tags_and_a_generators_own_tag_are_read() -> None:
    android = scan_container_tags({"com.android.manufacturer": "Google", "com.android.model": "Pixel 8",
                                   "creation_time": "2026-05-01T08:00:00.000000Z"})
    assert (android.camera_make, android.camera_model) == ("Google", "Pixel 8")
    generated = scan_container_tags({"comment": "Generated with Sora", "encoder": "Lavf61.1.100"})
    assert generated.generator_name == "Sora" and generated.generator_traces == (
        "container tag comment names a generator (Generated with Sora)",)
    assert scan_container_tags({"encoder": "Lavf62.12.102"}).camera_capture_fields == ()


def test_a_generator_tag_in_the_container_reaches_the_verdict(detector: Detector) -> None:
    verdict = detector.analyze(videos.clip("mp4-h264", seconds=1, tags={"comment": "Made with Runway Gen-3 and Sora"}))
    assert verdict.provenance.generator_name == "Sora" and verdict.provenance.generator_metadata


def test_a_c2pa_manifest_in_an_mp4_is_read(detector: Detector) -> None:
    signed = sign(videos.clip("mp4-h264", seconds=1), "video/mp4", generator="Test Video Generator")
    verdict = detector.analyze(signed)
    assert verdict.provenance.c2pa_present and verdict.provenance.c2pa_signature is SignatureState.VALID
    assert verdict.provenance.c2pa_digital_source_type == "trainedAlgorithmicMedia"
    assert verdict.label.value == "AI" and verdict.timeline is not None


def test_a_clip_no_frame_of_which_decodes_is_unreadable(detector: Detector) -> None:
    clip = videos.clip("mp4-h264", seconds=1, fps=5)
    with pytest.raises(ImageUnreadable, match="None of the clip's frames could be decoded"):
        detector.analyze(videos.with_corrupt_frames(clip, 0, 5))


class DecodeCounter:
    """An opened container that counts the frames its packets decode into."""

    def __init__(self, box: Any) -> None:
        self._box = box
        self.frames_decoded = 0

    def __enter__(self) -> DecodeCounter:
        self._box.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._box.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._box, name)

    def demux(self, *streams: Any) -> Any:
        for packet in self._box.demux(*streams):
            yield CountedPacket(packet, self)


class CountedPacket:
    def __init__(self, packet: Any, counter: DecodeCounter) -> None:
        self._packet, self._counter = packet, counter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._packet, name)

    def decode(self) -> list[Any]:
        frames = self._packet.decode()
        self._counter.frames_decoded += len(frames)
        return frames


def test_a_clips_frames_are_each_decoded_once(detector: Detector, monkeypatch: pytest.MonkeyPatch) -> None:
    texture = np.random.default_rng(5).integers(0, 40, (96, 168, 3), dtype=np.uint8)
    pictures = [texture[:, i : i + 128] + (180 if i < 15 else 20) for i in range(40)]  # a cut to dark at 1.5 s
    clip = videos.clip("mp4-h264", fps=10, width=128, height=96, pictures=pictures)
    opened: list[DecodeCounter] = []
    real_open = av.open

    def counting_open(*args: Any, **kwargs: Any) -> DecodeCounter:
        opened.append(DecodeCounter(real_open(*args, **kwargs)))
        return opened[-1]

    monkeypatch.setattr(av, "open", counting_open)
    timeline = detector.analyze(clip).timeline
    assert timeline is not None and [(f.index, f.scene_cut) for f in timeline.frames] == [
        (0, False), (10, False), (15, True), (20, False), (30, False)]
    decoding = [box.frames_decoded for box in opened if box.frames_decoded]
    assert decoding == [timeline.frames_in_file] == [40]  # one pass (the probe before it decodes nothing itself)


def test_a_frame_read_has_the_pixels_pyav_gives_whatever_the_row_padding() -> None:
    clip = videos.clip("mp4-h264", seconds=1, fps=5, width=134, height=76)  # RGB rows of 402 bytes, padded
    frames = list(VideoFrames(clip, probe_video(clip, "video/mp4"), 10).stream())
    with av.open(io.BytesIO(clip)) as box:
        expected = [np.asarray(frame.to_image()) for frame in box.decode(video=0)]
    assert [np.asarray(frame.rgb()).tolist() for frame in frames] == [picture.tolist() for picture in expected]
    assert all(frame.thumbnail is not None and frame.thumbnail.shape == (32, 32) for frame in frames)


FUZZ_CLIPS = [videos.clip(kind, seconds=1, fps=5, width=64, height=48) for kind in ("mp4-h264", "webm-vp9")]


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=st.sampled_from(range(len(FUZZ_CLIPS))), edits=videos.EDITS)
def test_a_mutated_clip_gets_a_verdict_or_a_reason_never_a_crash(detector: Detector, base: int,
                                                                 edits: list[tuple[str, float, bytes]]) -> None:
    try:
        verdict = detector.analyze(videos.mutated(FUZZ_CLIPS[base], edits))
    except ImageUnreadable as unreadable:
        assert str(unreadable)
    else:
        assert verdict.timeline is None or verdict.timeline.frames_read + verdict.timeline.frames_skipped >= 1


def _mean_difference(a: object, b: object) -> float:
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


def test_frame_picture_reads_the_numbered_frame_of_a_clip_from_bytes_or_a_path(tmp_path: Path) -> None:
    flat, textured = np.full((120, 160, 3), 128, np.uint8), np.asarray(images.picture(160, 120, seed=3))
    data = videos.clip("mp4-h264", fps=2, pictures=[flat, flat, textured, textured], crf=4)
    assert _mean_difference(frame_picture(data, 0), flat) < 3
    assert _mean_difference(frame_picture(data, 2), textured) < 8 < _mean_difference(frame_picture(data, 2), flat)
    (tmp_path / "clip.mp4").write_bytes(data)
    assert frame_picture(str(tmp_path / "clip.mp4"), 3).size == (160, 120)
    with pytest.raises(ImageUnreadable, match="Frame 4 could not be decoded"):
        frame_picture(data, 4)


def test_frame_picture_reads_the_numbered_frame_of_an_animated_gif() -> None:
    data = images.animated("GIF", count=4, scenes=(0, 2))
    assert _mean_difference(frame_picture(data, 2), frame_picture(data, 3)) < _mean_difference(
        frame_picture(data, 1), frame_picture(data, 2))  # frame 2 opens a new scene
    with pytest.raises(ImageUnreadable):
        frame_picture(data, 9)
