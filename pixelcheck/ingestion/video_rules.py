"""Upload rules of video clips: probed (container and codec headers, nothing decoded), refused over their limits.

Each refusal names its limit: VIDEO_TOO_LONG, VIDEO_FRAME_TOO_LARGE, VIDEO_TOO_MANY_FRAMES and
VIDEO_TOO_MUCH_TO_DECODE (frames x frame pixels) are TooLarge (as the ANIMATION_* limits are); VIDEO_TRUNCATED,
VIDEO_UNSUPPORTED_CODEC, VIDEO_EMPTY and VIDEO_UNDECODABLE (none of its first frames decodes: damaged, or frames
larger than the container says) are InvalidInput.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pixelcheck.errors import InvalidInput, TooLarge
from pixelcheck.video_formats import (
    CODEC_NAMES,
    FORMAT_NAMES,
    VIDEO_CODECS,
    VideoFacts,
    VideoUnreadable,
    first_frame_size,
    probe_video,
)

if TYPE_CHECKING:
    from pixelcheck.ingestion.validation import UploadLimits


def check_video(source: bytes | str, content_type: str, limits: UploadLimits) -> VideoFacts:
    """The clip's facts when it is within every limit (source: its bytes or the path of a file holding them).
    Raises InvalidInput or TooLarge naming what is wrong."""
    name = FORMAT_NAMES[content_type]
    try:
        clip = probe_video(source, content_type, limits.video_max_pixels)
    except VideoUnreadable as exc:
        raise InvalidInput(f"The {name} clip could not be read: {exc}", reason="VIDEO_TRUNCATED") from exc
    if clip.frame_count <= 0 or clip.duration_ms <= 0:
        raise InvalidInput(f"The {name} clip holds no frames", reason="VIDEO_EMPTY")
    accepted = VIDEO_CODECS[content_type]
    if clip.codec not in accepted:
        names = " and ".join(CODEC_NAMES[codec] for codec in accepted)
        raise InvalidInput(f"The {name} clip's video is coded as {clip.codec or 'an unknown codec'}; {name} clips "
                           f"are accepted in {names}", reason="VIDEO_UNSUPPORTED_CODEC",
                           metadata={"codec": clip.codec})
    if clip.width <= 0 or clip.height <= 0:
        raise InvalidInput(f"The {name} clip's frames have no size: the file is damaged", reason="VIDEO_TRUNCATED")
    _check_frame_size(clip.width, clip.height, limits)
    if clip.duration_ms > limits.video_max_duration_ms:
        raise TooLarge(f"The clip runs {clip.duration_ms / 1000:g} s by its container; the limit is "
                       f"{limits.video_max_duration_ms / 1000:g} s (video_max_duration_seconds)",
                       reason="VIDEO_TOO_LONG", metadata={"max_duration_ms": str(limits.video_max_duration_ms)})
    if clip.frame_count > limits.video_max_frames:
        raise TooLarge(f"The clip has {clip.frame_count} frames; the limit is {limits.video_max_frames} "
                       "(video_max_frames)", reason="VIDEO_TOO_MANY_FRAMES",
                       metadata={"max_frames": str(limits.video_max_frames)})
    _check_decoding_cost(clip, limits)
    # Last, as it decodes: one frame, within the frame-size limit (a larger one is not decoded).
    first = first_frame_size(source, limits.video_max_pixels)
    if first is None:
        raise InvalidInput(f"The {name} clip's first frames could not be decoded: the clip is damaged, or its "
                           "frames are larger than the container says", reason="VIDEO_UNDECODABLE")
    _check_frame_size(*first, limits)
    return clip


def _check_decoding_cost(clip: VideoFacts, limits: UploadLimits) -> None:
    """Every frame is decoded (the frames read depend on those before them): frames x frame pixels is what the
    analysis costs, and it must fit within the worker's time limit for a clip."""
    pixels = clip.frame_count * clip.width * clip.height
    if pixels > limits.video_max_decoded_pixels:
        limit_mp = limits.video_max_decoded_pixels // 1_000_000
        raise TooLarge(f"The clip has {clip.frame_count} frames of {clip.width}x{clip.height} pixels, "
                       f"{pixels // 1_000_000:,} megapixels to decode; the limit is {limit_mp:,} "
                       "(video_max_megapixels): send a shorter clip, or one at a lower resolution or frame rate",
                       reason="VIDEO_TOO_MUCH_TO_DECODE", metadata={"max_megapixels": str(limit_mp)})


def _check_frame_size(width: int, height: int, limits: UploadLimits) -> None:
    if max(width, height) > limits.video_max_side or width * height > limits.video_max_pixels:
        raise TooLarge(f"The clip's frames are {width}x{height} pixels; the limits are "
                       f"{limits.video_max_side} pixels per side and {limits.video_max_pixels / 1e6:g} megapixels "
                       "(video_max_side, video_max_pixels)", reason="VIDEO_FRAME_TOO_LARGE",
                       metadata={"max_side": str(limits.video_max_side), "max_pixels": str(limits.video_max_pixels)})
