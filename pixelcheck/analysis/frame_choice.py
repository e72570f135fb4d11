"""Which frame of an animation or clip a region map is asked of: checked against the frames its timeline read.

The first frame the timeline read is the one the image's own map (on its Analysis row) shows, as before frames
could be chosen; any other frame read gets a map of its own (FrameRegionMap), made when it is first asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pixelcheck.errors import InvalidInput

# Frames named in the error for a frame the timeline did not read: enough to show the spacing, not a wall of text.
LISTED_FRAMES = 10


@dataclass(frozen=True)
class FrameChoice:
    """The frame a region map is of: the timeline's reading of it ({"index", "time_ms", "prob_ai", "label",
    "scene_cut"}; None for a still image, or before the verdict), and whether the frame has a map of its own
    (any frame read but the first)."""

    frame: dict[str, Any] | None = None
    own_map: bool = False

    @property
    def index(self) -> int | None:
        return None if self.frame is None else int(self.frame["index"])


def check_frame_index(frame_index: int | None) -> None:
    """Raises InvalidInput (INVALID_FRAME_INDEX) for a negative frame index."""
    if frame_index is not None and frame_index < 0:
        raise InvalidInput(f"frame_index must be 0 or more, not {frame_index}", reason="INVALID_FRAME_INDEX",
                           violations=[("frame_index", "must be 0 or more")])


def choose_frame(image_id: str, timeline: dict[str, Any] | None, frame_index: int | None) -> FrameChoice:
    """The frame to map of a judged image (its stored Analysis.timeline; None for a still image).

    Raises InvalidInput: NOT_A_MOVING_IMAGE when a frame is named for a still image, FRAME_NOT_ANALYSED (naming
    frames that can be mapped) when the timeline did not read it.
    """
    check_frame_index(frame_index)
    if timeline is None:
        if frame_index is None:
            return FrameChoice()
        raise InvalidInput(f"Image {image_id} is a still image: it has no frames to choose from; leave frame_index "
                           "unset", reason="NOT_A_MOVING_IMAGE",
                           violations=[("frame_index", "must be unset for a still image")],
                           metadata={"image_id": image_id})
    frames = list(timeline.get("frames", []))
    if frame_index is None:
        return FrameChoice(frames[0] if frames else None)
    found = next((f for f in frames if int(f["index"]) == frame_index), None)
    if found is None:
        indices = [str(f["index"]) for f in frames]
        listed = ", ".join(indices[:LISTED_FRAMES]) + (f" ... ({len(indices)} in all)"
                                                      if len(indices) > LISTED_FRAMES else "")
        which = f"the frames its timeline read: {listed}" if indices else "none: no frame was read"
        raise InvalidInput(f"Frame {frame_index} of image {image_id} was not analysed; a region map can be made of "
                           f"{which}", reason="FRAME_NOT_ANALYSED",
                           violations=[("frame_index", "not one of the frames the timeline read")],
                           metadata={"image_id": image_id, "frame_index": str(frame_index),
                                     "analysed_frames": ",".join(indices[:LISTED_FRAMES])})
    return FrameChoice(found, own_map=found is not frames[0])
