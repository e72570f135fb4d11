"""Upload rules for animated GIF, WebP and PNG: accepted from their bytes, measured before decoding, refused by
each limit with a reason naming it."""

from __future__ import annotations

import time

import pytest

from pixelcheck.errors import InvalidInput, TooLarge
from pixelcheck.ingestion.validation import UploadLimits, analysis_cost, decode_image
from tests import images

LIMITS = UploadLimits(max_bytes=10 << 20, max_chunk_bytes=1 << 20, max_side=12_000, max_pixels=50_000_000)


def limits(**changes: int) -> UploadLimits:
    return UploadLimits(**{**LIMITS.__dict__, **changes})


@pytest.mark.parametrize(("fmt", "content_type"), [("GIF", "image/gif"), ("WEBP", "image/webp"),
                                                   ("PNG", "image/png")])
def test_animations_are_accepted_with_their_frames_and_running_time(fmt: str, content_type: str) -> None:
    decoded = decode_image(images.animated(fmt, count=6, duration_ms=250), LIMITS)
    assert (decoded.content_type, decoded.width, decoded.height) == (content_type, 160, 120)
    assert (decoded.frame_count, decoded.duration_ms) == (6, 1500)


def test_stills_keep_one_frame_and_no_running_time() -> None:
    for data in (images.png(), images.webp(), images.jpeg()):
        decoded = decode_image(data, LIMITS)
        assert (decoded.frame_count, decoded.duration_ms) == (1, 0)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_a_one_frame_animation_file_is_a_still(fmt: str) -> None:
    data = images.encode(images.picture(64, 48), fmt, save_all=True, append_images=[])
    assert decode_image(data, LIMITS).frame_count == 1


def test_a_still_gif_stays_an_unsupported_type() -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_image(images.gif(), LIMITS)
    assert caught.value.reason == "UNSUPPORTED_TYPE" and "only as an animation" in str(caught.value)


def test_a_gif_declaring_100000_frames_is_refused_before_any_is_decoded() -> None:
    data = images.gif_declaring_frames(100_000)
    started = time.perf_counter()
    with pytest.raises(TooLarge) as caught:
        decode_image(data, LIMITS)
    assert caught.value.reason == "ANIMATION_TOO_MANY_FRAMES" and caught.value.metadata["max_frames"] == "10000"
    assert time.perf_counter() - started < 1.0


def test_the_frame_limit_is_a_setting() -> None:
    with pytest.raises(TooLarge) as caught:
        decode_image(images.animated("WEBP", count=6), limits(max_frames=5))
    assert caught.value.reason == "ANIMATION_TOO_MANY_FRAMES"
    assert decode_image(images.animated("WEBP", count=5), limits(max_frames=5)).frame_count == 5


def test_an_animation_running_too_long_is_refused() -> None:
    with pytest.raises(TooLarge) as caught:
        decode_image(images.animated("GIF", count=4, duration_ms=3000), limits(max_duration_ms=10_000))
    assert caught.value.reason == "ANIMATION_TOO_LONG" and "12 s" in str(caught.value)


def test_a_huge_frame_declared_in_a_tiny_file_is_refused_before_decoding() -> None:
    data = images.gif_declaring_frames(3, frame_width=30_000, frame_height=30_000)
    assert len(data) < 100
    with pytest.raises(TooLarge) as caught:
        decode_image(data, LIMITS)
    assert caught.value.reason == "IMAGE_DIMENSIONS_TOO_LARGE" and "Frame 0" in str(caught.value)


def test_too_many_pixels_over_all_frames_is_refused() -> None:
    with pytest.raises(TooLarge) as caught:
        decode_image(images.animated("PNG", count=4), limits(max_animation_pixels=3 * 160 * 120))
    assert caught.value.reason == "ANIMATION_TOO_LARGE"


def test_a_webp_frame_larger_than_its_canvas_is_refused() -> None:
    # Pillow will not write frames of mismatched sizes; the helper edits a frame's declared size.
    with pytest.raises(InvalidInput) as caught:
        decode_image(images.webp_with_frame_outside_canvas(), LIMITS)
    assert caught.value.reason == "ANIMATION_FRAME_OUTSIDE_CANVAS" and "Frame 1" in str(caught.value)


def test_a_zero_duration_animation_is_timed_as_browsers_play_it() -> None:
    decoded = decode_image(images.animated("GIF", count=5, duration_ms=0), LIMITS)
    assert (decoded.frame_count, decoded.duration_ms) == (5, 500)  # 100 ms a frame


def test_a_gif_with_a_corrupt_frame_in_the_middle_is_accepted_for_analysis() -> None:
    decoded = decode_image(images.gif_with_corrupt_frame(3), LIMITS)
    assert decoded.frame_count == 6  # the analysis skips the broken frame and says so


def test_a_gif_cut_off_after_some_frames_counts_the_frames_it_holds() -> None:
    data = images.animated("GIF", count=8, width=128, height=128)
    decoded = decode_image(data[: len(data) * 6 // 10], LIMITS)
    assert 2 <= decoded.frame_count < 8


def test_an_animation_costs_the_frames_it_will_have_read() -> None:
    still = decode_image(images.png(), LIMITS)
    short = decode_image(images.animated("GIF", count=6, duration_ms=500), LIMITS)
    long = decode_image(images.animated("WEBP", count=50, duration_ms=2000), limits(analysed_frames=20))
    assert analysis_cost(still, LIMITS) == 1 and analysis_cost(short, LIMITS) == 3
    assert analysis_cost(long, limits(analysed_frames=20)) == 20
