"""Real images made with Pillow for tests: photos-like noise and gradients in every accepted format."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageFilter


def picture(width: int = 640, height: int = 480, seed: int = 0) -> Image.Image:
    """A textured RGB picture (gradient + noise + shapes), different for each seed."""
    rng = random.Random(seed)
    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.effect_noise((width, height), 40 + seed % 30).convert("RGB")
    image = Image.blend(base, noise, 0.35)
    tint = Image.new("RGB", (width, height), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    return Image.blend(image, tint, 0.25).filter(ImageFilter.GaussianBlur(0.6))


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def jpeg(width: int = 640, height: int = 480, seed: int = 0, quality: int = 90) -> bytes:
    return encode(picture(width, height, seed), "JPEG", quality=quality)


def png(width: int = 640, height: int = 480, seed: int = 0) -> bytes:
    return encode(picture(width, height, seed), "PNG")


def webp(width: int = 640, height: int = 480, seed: int = 0) -> bytes:
    return encode(picture(width, height, seed), "WEBP", quality=90)


def gif(width: int = 64, height: int = 64) -> bytes:
    return encode(picture(width, height).convert("P"), "GIF")


def huge_flat_png(width: int = 10_000, height: int = 10_000) -> bytes:
    """A tiny file that decodes to an enormous image: a decompression bomb."""
    return encode(Image.new("1", (width, height)), "PNG", optimize=True)
