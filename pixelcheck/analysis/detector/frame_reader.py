"""Reading an animation's frames one at a time: animated GIF, WebP and PNG through Pillow's seek.

Each frame is decoded to RGB as the viewer sees it (Pillow composes GIF and APNG frames onto the canvas) and
handed on before the next is read, so an animation never sits whole in memory. Video clips are read by
video_reader, beside this one, into the same DecodedFrame, and both give the timeline's one pass StreamedFrames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pixelcheck.animation_formats import AnimationFacts, scan_animation

_CONTENT_TYPES = {"GIF": "image/gif", "PNG": "image/png", "WEBP": "image/webp"}
_SCAN_FRAMES = 10_000_000  # the upload rules bounded the frames already; the scan only stops at the file's end
THUMBNAIL_SIZE = (32, 32)  # the grey pictures scene cuts are measured on


@dataclass(frozen=True)
class DecodedFrame:
    index: int
    picture: Image.Image | None  # RGB; None when the frame could not be decoded (corrupt or cut off)
    time_ms: int = 0  # when it appears on the timeline (set by the video reader; animations time their frames)


@dataclass(frozen=True)
class StreamedFrame:
    """A frame as one pass over the file meets it: when it starts, a grey thumbnail to find scene cuts on, and its
    RGB picture, made only when asked for (a frame that is read), from the decoder's picture held until then."""

    index: int
    time_ms: int
    thumbnail: np.ndarray | None  # THUMBNAIL_SIZE grey levels as float32; None when the frame could not be decoded
    rgb: Callable[[], Image.Image]

    @property
    def readable(self) -> bool:
        return self.thumbnail is not None

    @classmethod
    def undecodable(cls, index: int, time_ms: int) -> StreamedFrame:
        """A frame that could not be decoded: it has no picture to give."""
        def no_picture() -> Image.Image:
            raise ValueError(f"frame {index} could not be decoded")
        return cls(index, time_ms, None, no_picture)


def animation_facts(image: Image.Image, data: bytes) -> AnimationFacts | None:
    """The frames and times of an opened animated GIF, WebP or PNG; None for any still picture."""
    content_type = _CONTENT_TYPES.get(image.format or "")
    if content_type is None or not getattr(image, "is_animated", False):
        return None
    facts = scan_animation(data, content_type, _SCAN_FRAMES)
    return facts if facts is not None and facts.frame_count > 1 else None


def read_frames(image: Image.Image, frame_count: int) -> Iterator[DecodedFrame]:
    """Frames 0 .. frame_count - 1 of an opened animation, in order. A frame that fails to decode comes with
    picture None and reading goes on; once the file cannot be read further (cut off, or a broken frame that later
    frames depend on), every remaining frame comes with None."""
    broken = False
    for index in range(frame_count):
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
