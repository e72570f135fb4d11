"""Which frame a region map is asked of: each bad frame_index refused with its own reason and field violation."""

from __future__ import annotations

import pytest

from pixelcheck.analysis.frame_choice import LISTED_FRAMES, FrameChoice, choose_frame
from pixelcheck.errors import InvalidInput

IMAGE = "a" * 32


def timeline(*indices: int) -> dict:
    return {"frames": [{"index": i, "time_ms": i * 100, "prob_ai": 0.5, "label": "REAL", "scene_cut": False}
                       for i in indices]}


def refused(timeline_doc: dict | None, frame_index: int | None) -> InvalidInput:
    with pytest.raises(InvalidInput) as error:
        choose_frame(IMAGE, timeline_doc, frame_index)
    return error.value


def test_a_negative_frame_index_is_invalid_whatever_the_image() -> None:
    for doc in (None, timeline(0, 10)):
        error = refused(doc, -1)
        assert error.reason == "INVALID_FRAME_INDEX" and error.violations == (("frame_index", "must be 0 or more"),)


def test_a_frame_index_for_a_still_image_is_invalid_and_says_to_leave_it_unset() -> None:
    error = refused(None, 0)
    assert error.reason == "NOT_A_MOVING_IMAGE" and "leave frame_index unset" in error.message
    assert [field for field, _ in error.violations] == ["frame_index"]


def test_a_frame_the_timeline_did_not_read_is_invalid_and_the_error_names_the_frames_that_can_be_mapped() -> None:
    error = refused(timeline(0, 10, 20, 30), 15)
    assert error.reason == "FRAME_NOT_ANALYSED" and [f for f, _ in error.violations] == ["frame_index"]
    assert error.message.endswith("the frames its timeline read: 0, 10, 20, 30")
    assert error.metadata == {"image_id": IMAGE, "frame_index": "15", "analysed_frames": "0,10,20,30"}


def test_a_long_timeline_is_named_by_its_first_frames_and_their_count() -> None:
    error = refused(timeline(*range(0, 600, 10)), 5)
    assert error.message.endswith(f"{', '.join(str(i) for i in range(0, 10 * LISTED_FRAMES, 10))} ... (60 in all)")


def test_unset_maps_the_first_frame_read_on_the_images_own_map_and_a_later_frame_gets_its_own() -> None:
    doc = timeline(0, 10, 20)
    assert choose_frame(IMAGE, None, None) == FrameChoice()
    assert choose_frame(IMAGE, doc, None) == FrameChoice(doc["frames"][0], own_map=False)
    assert choose_frame(IMAGE, doc, 0) == FrameChoice(doc["frames"][0], own_map=False)
    later = choose_frame(IMAGE, doc, 20)
    assert later.own_map and later.index == 20 and later.frame == doc["frames"][2]
