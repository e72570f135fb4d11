"""Reading an animation's frames one at a time: animated GIF, WebP and PNG through Pillow's seek.

Each frame is decoded to RGB as the viewer sees it (Pillow composes GIF and APNG frames onto the canvas) and
handed on before the next is read, so an animation never sits whole in memory. Video clips are read by
video_reader, beside this one, into the same DecodedFrame.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image

from pixelcheck.animation_formats import AnimationFacts, scan_animation

_CONTENT_TYPES = {"GIF": "image/gif", "PNG": "image/png", "WEBP": "image/webp"}
_SCAN_FRAMES = 10_000_000  # the upload rules bounded the frames already; the scan only stops at the file's end


@dataclass(frozen=True)
class DecodedFrame:
    index: int
    picture: Image.Image | None  # RGB; None when the frame could not be decoded (corrupt or cut off)
    time_ms: int = 0  # when it appears on the timeline (set by the video reader; animations time their frames)


def animation_facts(image: Image.Image, data: bytes) -> AnimationFacts | None:
    """The frames and times of an opened animated GIF, WebP or PNG; None for any still picture."""
    content_type = _CONTENT_TYPES.get(image.format or "")
    if content_type is None or not getattr(image, "is_animated", False):
        return None
    facts = scan_animation(data, content_type, _SCAN_FRAMES)
    return facts if facts is not None and facts.frame_count > 1 else None


def read_frames(image: Image.Image, frame_count: int, *, last: int | None = None) -> Iterator[DecodedFrame]:
    """Frames 0 .. min(frame_count, last + 1) - 1 of an opened animation, in order. A frame that fails to decode
    comes with picture None and reading goes on; once the file cannot be read further (cut off, or a broken
    frame that later frames depend on), every remaining frame comes with None."""
    stop = frame_count if last is None else min(frame_count, last + 1)
    broken = False
    for index in range(stop):
        if broken:
            yield DecodedFrame(index, None)
            continue
        try:
            image.seek(index)
            image.load()
            picture = image.convert("RGB")
        except EOFError:
            broken = True
            yield DecodedFrame(index, None)
            continue
        except Exception:  # Pillow raises OSError, ValueError, SyntaxError ... for damaged frame data
            broken = image.tell() != index  # not even positioned on the frame: the file ends here for Pillow
            yield DecodedFrame(index, None)
            continue
        yield DecodedFrame(index, picture)
