"""Upload rules for video clips: MP4, MOV and WebM sniffed from their bytes, probed before any frame is decoded,
refused by each limit and for each kind of bad file with a reason naming it."""

from __future__ import annotations

import io

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixelcheck.errors import InvalidInput, TooLarge
from pixelcheck.image_formats import SNIFF_BYTES
from pixelcheck.ingestion.validation import DecodedImage, UploadLimits, analysis_cost, check_declared_type, decode_image
from pixelcheck.video_formats import sniff_video_type
from tests import images, videos

LIMITS = UploadLimits(max_bytes=10 << 20, max_chunk_bytes=1 << 20, max_side=12_000, max_pixels=50_000_000)


def limits(**changes: int) -> UploadLimits:
    return UploadLimits(**{**LIMITS.__dict__, **changes})


@pytest.mark.parametrize(("kind", "content_type"), [
    ("mp4-h264", "video/mp4"), ("mp4-hevc", "video/mp4"), ("mov-h264", "video/quicktime"),
    ("mov-hevc", "video/quicktime"), ("webm-vp8", "video/webm"), ("webm-vp9", "video/webm"),
    ("webm-av1", "video/webm")])
def test_clips_are_accepted_in_each_container_and_codec(kind: str, content_type: str) -> None:
    decoded = decode_image(videos.clip(kind, seconds=1.5, fps=10, width=96, height=64), LIMITS)
    assert (decoded.content_type, decoded.width, decoded.height) == (content_type, 96, 64)
    assert (decoded.frame_count, decoded.duration_ms) == (15, 1500)


def test_the_type_is_sniffed_from_the_bytes_not_the_name() -> None:
    assert sniff_video_type(videos.clip("mp4-h264")[:SNIFF_BYTES]) == "video/mp4"
    assert sniff_video_type(videos.clip("mov-h264")[:SNIFF_BYTES]) == "video/quicktime"
    assert sniff_video_type(videos.clip("webm-vp9")[:SNIFF_BYTES]) == "video/webm"
    for still in (images.heic(64, 48), images.avif(64, 48), images.jpeg(64, 48), b"\0" * 64):
        assert sniff_video_type(still[:SNIFF_BYTES]) is None


def test_a_matroska_file_that_is_not_webm_is_refused_as_unsupported() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in videos.clip_frames(10, 64, 48):
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with pytest.raises(InvalidInput) as caught:
        decode_image(buffer.getvalue(), LIMITS)
    assert caught.value.reason == "UNSUPPORTED_TYPE" and "WebM" in caught.value.message


def test_stills_and_animations_keep_their_path() -> None:
    assert decode_image(images.heic(64, 48), LIMITS).content_type == "image/heic"
    animated = decode_image(images.animated("GIF", count=4, duration_ms=500), LIMITS)
    assert (animated.content_type, animated.frame_count, animated.duration_ms) == ("image/gif", 4, 2000)


def test_a_clip_costs_the_frames_the_model_reads_and_decoding_all_of_them_in_the_fair_queue() -> None:
    decoded = decode_image(videos.clip("mp4-h264", seconds=3.0, fps=10), LIMITS)
    assert analysis_cost(decoded, LIMITS) == 3 + 1  # 30 frames of 160x120 decode in less than one turn
    assert analysis_cost(decoded, limits(analysed_frames=2)) == 2 + 1
    minute_of_1080p = DecodedImage("video/mp4", 1920, 1080, frame_count=1800, duration_ms=60_000)
    assert analysis_cost(minute_of_1080p, LIMITS) == 60 + 83
    ten_minutes_of_4k = DecodedImage("video/mp4", 3840, 2160, frame_count=18_000, duration_ms=600_000)
    assert analysis_cost(ten_minutes_of_4k, LIMITS) == 60 + 3318
    gif = DecodedImage("image/gif", 1920, 1080, frame_count=1800, duration_ms=60_000)
    assert analysis_cost(gif, LIMITS) == 60  # an animation keeps its cost: the frames read


def test_an_mp4_without_its_index_is_refused_as_truncated() -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_image(videos.without_box(videos.clip("mp4-h264"), b"moov"), LIMITS)
    assert caught.value.reason == "VIDEO_TRUNCATED" and "moov" in caught.value.message


def test_an_mp4_cut_off_inside_its_index_is_refused_as_truncated() -> None:
    data = videos.clip("mp4-h264")
    with pytest.raises(InvalidInput) as caught:
        decode_image(data[: len(data) - 300], LIMITS)  # the index comes last: the cut falls inside it
    assert caught.value.reason == "VIDEO_TRUNCATED" and "ends inside its 'moov' box" in caught.value.message


def test_a_cut_off_webm_is_refused_as_truncated() -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_image(videos.clip("webm-vp9")[:80], LIMITS)
    assert caught.value.reason == "VIDEO_TRUNCATED"


def test_an_unsupported_codec_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_image(videos.clip("mp4-mpeg4"), LIMITS)
    assert caught.value.reason == "VIDEO_UNSUPPORTED_CODEC" and caught.value.metadata == {"codec": "mpeg4"}
    assert "H.264 and H.265/HEVC" in caught.value.message


def test_a_zero_length_clip_is_refused_as_empty() -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_image(videos.empty_mp4(), LIMITS)
    assert caught.value.reason == "VIDEO_EMPTY"


def test_a_container_claiming_ten_hours_is_refused_by_the_duration_limit() -> None:
    with pytest.raises(TooLarge) as caught:
        decode_image(videos.with_declared_duration(videos.clip("mp4-h264"), 10 * 3600), LIMITS)
    assert caught.value.reason == "VIDEO_TOO_LONG" and "36000 s" in caught.value.message
    assert caught.value.metadata == {"max_duration_ms": "600000"}


def test_a_clip_over_the_duration_setting_is_refused() -> None:
    with pytest.raises(TooLarge) as caught:
        decode_image(videos.clip("webm-vp8", seconds=3), limits(video_max_duration_ms=2000))
    assert caught.value.reason == "VIDEO_TOO_LONG" and "video_max_duration_seconds" in caught.value.message


def test_a_frame_size_over_the_limits_is_refused() -> None:
    clip = videos.clip("mp4-h264", width=320, height=240, seconds=0.5)
    with pytest.raises(TooLarge) as caught:
        decode_image(clip, limits(video_max_side=256))
    assert caught.value.reason == "VIDEO_FRAME_TOO_LARGE" and "320x240" in caught.value.message
    with pytest.raises(TooLarge) as caught:
        decode_image(clip, limits(video_max_pixels=320 * 240 - 1))
    assert caught.value.reason == "VIDEO_FRAME_TOO_LARGE"


def test_a_clip_with_more_frames_than_the_limit_is_refused() -> None:
    with pytest.raises(TooLarge) as caught:
        decode_image(videos.clip("mp4-h264", seconds=2, fps=10), limits(video_max_frames=19))
    assert caught.value.reason == "VIDEO_TOO_MANY_FRAMES" and caught.value.metadata == {"max_frames": "19"}


def test_a_clip_with_more_pixels_to_decode_than_the_limit_is_refused_before_any_work() -> None:
    clip = videos.clip("mp4-h264", seconds=2, fps=10, width=160, height=120)  # 20 x 19,200 = 384,000 pixels
    assert decode_image(clip, limits(video_max_decoded_pixels=384_000)).frame_count == 20
    with pytest.raises(TooLarge) as caught:
        decode_image(clip, limits(video_max_decoded_pixels=383_999))
    assert caught.value.reason == "VIDEO_TOO_MUCH_TO_DECODE" and "(video_max_megapixels)" in caught.value.message
    assert "20 frames of 160x120 pixels" in caught.value.message


def test_a_clip_over_the_byte_limit_for_video_is_refused() -> None:
    data = videos.clip("mp4-h264")
    with pytest.raises(TooLarge) as caught:
        decode_image(data, limits(video_max_bytes=len(data) - 1))
    assert caught.value.reason == "VIDEO_TOO_LARGE" and caught.value.metadata == {"limit_bytes": str(len(data) - 1)}


FUZZ_CLIPS = [videos.clip(kind, seconds=1, fps=5, width=64, height=48) for kind in ("mp4-h264", "mov-hevc",
                                                                                      "webm-vp9", "webm-av1")]


@settings(max_examples=120, deadline=None, derandomize=True)
@given(base=st.sampled_from(range(len(FUZZ_CLIPS))), edits=videos.EDITS)
def test_a_mutated_clip_is_accepted_or_refused_with_a_reason_never_an_error(
        base: int, edits: list[tuple[str, float, bytes]]) -> None:
    try:
        decode_image(videos.mutated(FUZZ_CLIPS[base], edits), LIMITS)
    except (InvalidInput, TooLarge) as refused:
        assert refused.reason.isupper() and refused.message


def test_frames_of_16000x16000_declared_by_a_tiny_h264_clip_are_refused_before_decoding() -> None:
    clip = videos.with_h264_frame_size(videos.clip("mp4-h264", seconds=0.5, width=64, height=48), 16_000, 16_000)
    assert len(clip) < 5000
    with pytest.raises(TooLarge) as caught:
        decode_image(clip, LIMITS)
    assert caught.value.reason == "VIDEO_FRAME_TOO_LARGE" and "16000x16000" in caught.value.message
    assert caught.value.metadata == {"max_side": "8192", "max_pixels": str(8192 * 4320)}


def test_frames_of_30000x30000_declared_by_a_tiny_h264_clip_are_refused_as_undecodable() -> None:
    # FFmpeg refuses a sequence header that large outright; the container's own 64x48 then decodes nothing.
    clip = videos.with_h264_frame_size(videos.clip("mp4-h264", seconds=0.5, width=64, height=48), 30_000, 30_000)
    with pytest.raises(InvalidInput) as caught:
        decode_image(clip, LIMITS)
    assert caught.value.reason == "VIDEO_UNDECODABLE"


def test_a_clip_whose_first_frames_are_all_corrupt_is_refused_as_undecodable() -> None:
    clip = videos.with_corrupt_frames(videos.clip("mp4-h264", seconds=1, fps=5), 0, 5)
    with pytest.raises(InvalidInput) as caught:
        decode_image(clip, LIMITS)
    assert caught.value.reason == "VIDEO_UNDECODABLE"


def test_mp4_and_mov_may_be_declared_for_each_other_but_not_for_webm() -> None:
    check_declared_type("video/mp4", "video/quicktime")
    check_declared_type("video/quicktime", "video/mp4")
    check_declared_type("video/x-m4v", "video/mp4")
    with pytest.raises(InvalidInput) as caught:
        check_declared_type("video/mp4", "video/webm")
    assert caught.value.reason == "CONTENT_TYPE_MISMATCH"
