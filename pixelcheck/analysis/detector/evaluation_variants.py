"""What scripts/eval-detector does to each labelled file before it is scored: re-encodes as JPEG, the robustness
set (JPEG q70, half size, blur, a messaging-app copy), short animations and short video clips. Every variant maps
the original file's bytes to the bytes that are scored, so each is judged as the service judges an upload of it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageFilter

from pixelcheck.analysis.detector.image_facts import decode_rgb, open_image
from pixelcheck.analysis.detector.recompression import jpeg_bytes, social_copy_bytes

Variant = Callable[[bytes], bytes]

PAN_PX = 4  # each frame of an animation or clip moves this far: identical frames would be merged by the encoder
FRAME_MS = 500  # three frames, 1.5 s: read at 0 s (the first, a key frame in a clip) and 1 s (the third)
CLIP_LONG_SIDE = 1920  # a clip's frames are the picture at its own size, at most this on the long side


def decoded(data: bytes) -> Image.Image:
    return decode_rgb(open_image(data))


VARIANTS: dict[str, Variant] = {
    "original": lambda data: data,
    "jpeg_q95_no_metadata": lambda data: jpeg_bytes(decoded(data), 95),
}
ROBUSTNESS_VARIANTS: dict[str, Variant] = {
    "jpeg_q70": lambda data: jpeg_bytes(decoded(data), 70),
    "half_size": lambda data: jpeg_bytes(
        (rgb := decoded(data)).resize((max(1, rgb.width // 2), max(1, rgb.height // 2)), Image.Resampling.BICUBIC),
        95,
    ),
    "blur_sigma1": lambda data: jpeg_bytes(decoded(data).filter(ImageFilter.GaussianBlur(radius=1.0)), 95),
    "social_copy": lambda data: social_copy_bytes(decoded(data)),
}


def panned_frames(rgb: Image.Image, width: int, height: int) -> list[Image.Image]:
    """Three width x height frames of the picture, each PAN_PX further down and right (the picture is at least
    width + 2 * PAN_PX by height + 2 * PAN_PX)."""
    return [rgb.crop((d, d, d + width, d + height)) for d in (0, PAN_PX, 2 * PAN_PX)]


def _animation(rgb: Image.Image, image_format: str, **options: Any) -> bytes:
    """The picture as a 1.5 s animation of three panned frames, 0.5 s apiece."""
    frames = panned_frames(rgb, max(1, rgb.width - 2 * PAN_PX), max(1, rgb.height - 2 * PAN_PX))
    buffer = io.BytesIO()
    frames[0].save(buffer, format=image_format, save_all=True, append_images=frames[1:], duration=FRAME_MS, loop=0,
                   **options)
    return buffer.getvalue()


# What animations do to the pixels: a GIF's 256 dithered colours, an animated WebP's lossy frames.
ANIMATION_VARIANTS: dict[str, Variant] = {
    "animated_gif": lambda data: _animation(decoded(data), "GIF"),
    "animated_webp_q80": lambda data: _animation(decoded(data), "WEBP", quality=80),
}


@dataclass(frozen=True)
class ClipEncoding:
    container: str
    codec: str
    bits_per_pixel: float  # per frame: a bitrate as bits / (width x height x frames per second)
    options: tuple[tuple[str, str], ...] = ()


# Bitrates per pixel of what people share, e.g. at 1080p30: a phone's H.264 at 17 Mb/s (0.27) and HEVC at
# 10 Mb/s (0.16); a social platform's H.264 at 3.5 Mb/s (0.056); a video site's VP9 at 2.5 Mb/s (0.04).
CLIP_DESCRIPTIONS = {
    "original": "The pictures as they are (stills)",
    "h264_phone": "H.264 at a phone's bitrate (17 Mb/s at 1080p30)",
    "h264_social": "H.264 at a social platform's bitrate (3.5 Mb/s at 1080p30)",
    "hevc_phone": "HEVC at a phone's bitrate (10 Mb/s at 1080p30)",
    "vp9_web": "VP9 at a video site's bitrate (2.5 Mb/s at 1080p30)",
}
CLIP_ENCODINGS = {
    "h264_phone": ClipEncoding("mp4", "libx264", 0.27),
    "h264_social": ClipEncoding("mp4", "libx264", 0.056),
    "hevc_phone": ClipEncoding("mp4", "libx265", 0.16, (("x265-params", "log-level=none"),)),
    "vp9_web": ClipEncoding("webm", "libvpx-vp9", 0.04),
}


def clip_size(width: int, height: int) -> tuple[int, int, float]:
    """(frame width, frame height, scale) of a picture's clip: scaled down to CLIP_LONG_SIDE on its long side
    (never up), minus the pan, rounded down to even sides as 4:2:0 video needs."""
    scale = min(1.0, CLIP_LONG_SIDE / max(width, height))
    frame_width = (round(width * scale) - 2 * PAN_PX) // 2 * 2
    frame_height = (round(height * scale) - 2 * PAN_PX) // 2 * 2
    return max(2, frame_width), max(2, frame_height), scale


def video_clip(rgb: Image.Image, encoding: ClipEncoding) -> bytes:
    """The picture as a 1.5 s clip of three panned frames at 2 frames per second (the second and third are
    predicted from the first, as most of a video's frames are), encoded at the encoding's bitrate."""
    import av

    width, height, scale = clip_size(rgb.width, rgb.height)
    if scale < 1.0:
        rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.BICUBIC)
    fps = 1000 // FRAME_MS
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=encoding.container) as out:
        stream = out.add_stream(encoding.codec, rate=fps, options=dict(encoding.options))
        stream.thread_count = 1  # one core per image, as --threads counts them
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = max(1000, round(encoding.bits_per_pixel * width * height * fps))
        for frame in panned_frames(rgb, width, height):
            out.mux(stream.encode(av.VideoFrame.from_image(frame)))
        out.mux(stream.encode())
    return buffer.getvalue()


def _clip_variant(encoding: ClipEncoding) -> Variant:
    return lambda data: video_clip(decoded(data), encoding)


# What video compression does to the pixels, judged frame by frame as the service judges clips.
VIDEO_VARIANTS: dict[str, Variant] = {name: _clip_variant(encoding) for name, encoding in CLIP_ENCODINGS.items()}
