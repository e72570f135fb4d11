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


def heic(width: int = 640, height: int = 480, seed: int = 0, exif: bytes | None = None) -> bytes:
    """A real HEIC file (HEVC in HEIF, as iPhones write it), encoded by libheif through pillow-heif."""
    from pixelcheck.image_formats import enable_decoders

    enable_decoders()
    return encode(picture(width, height, seed), "HEIF", quality=85, **({"exif": exif} if exif else {}))


def avif(width: int = 640, height: int = 480, seed: int = 0, exif: bytes | None = None) -> bytes:
    """A real AVIF file (AV1 in HEIF), encoded by Pillow's libavif."""
    return encode(picture(width, height, seed), "AVIF", quality=80, **({"exif": exif} if exif else {}))


def apple_exif(model: str = "iPhone 15 Pro") -> bytes:
    """An EXIF block as an iPhone writes it: Apple make and model, iOS software, lens and capture tags."""
    exif = Image.Exif()
    exif[0x010F] = "Apple"  # Make
    exif[0x0110] = model  # Model
    exif[0x0131] = "17.4.1"  # Software
    exif[0x0132] = "2026:11:03 09:41:07"  # DateTime
    exif[0x0112] = 1  # Orientation
    sub = exif.get_ifd(0x8769)  # the Exif IFD
    sub[0x829A] = 1 / 120  # ExposureTime
    sub[0x829D] = 1.78  # FNumber
    sub[0x8827] = 64  # ISOSpeedRatings
    sub[0x9003] = "2026:11:03 09:41:07"  # DateTimeOriginal
    sub[0x920A] = 6.86  # FocalLength
    sub[0xA433] = "Apple"  # LensMake
    sub[0xA434] = f"{model} back triple camera 6.86mm f/1.78"  # LensModel
    return exif.tobytes()


def gif(width: int = 64, height: int = 64) -> bytes:
    return encode(picture(width, height).convert("P"), "GIF")


def huge_flat_png(width: int = 10_000, height: int = 10_000) -> bytes:
    """A tiny file that decodes to an enormous image: a decompression bomb."""
    return encode(Image.new("1", (width, height)), "PNG", optimize=True)
