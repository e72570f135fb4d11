"""Real images made with Pillow for tests: photos-like noise and gradients in every accepted format."""

from __future__ import annotations

import io
import random
import struct

import numpy as np
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


def bmp(width: int = 640, height: int = 480, seed: int = 0, mode: str = "RGB") -> bytes:
    """A Windows bitmap: RGB is 24-bit, RGBA 32-bit, P an 8-bit palette."""
    return encode(picture(width, height, seed).convert(mode), "BMP")


def tiff(width: int = 640, height: int = 480, seed: int = 0, mode: str = "RGB", compression: str | None = None,
         **options: object) -> bytes:
    """A TIFF written by Pillow (libtiff for the compressed ones: tiff_lzw, jpeg, tiff_adobe_deflate ...)."""
    return encode(picture(width, height, seed).convert(mode), "TIFF",
                  **({"compression": compression} if compression else {}), **options)


def tiff_16_bit_gray(width: int = 320, height: int = 240) -> bytes:
    """A 16-bit grayscale TIFF (as scanners write) of a left-to-right ramp over the whole 0..65535 range."""
    ramp = np.tile(np.linspace(0, 65535, width).round().astype("<u2"), (height, 1))
    return encode(Image.fromarray(ramp), "TIFF")


def raw_tiff(width: int, height: int, *, bits: int = 8, samples: int = 3, pixels: bytes | None = None,
             subfile_types: tuple[int, ...] = (0,)) -> bytes:
    """An uncompressed little-endian TIFF written byte by byte, for what Pillow will not write: 16 bits per
    RGB sample, a header claiming more pixels than the file holds (pixels=b""), and several directories,
    one per NewSubfileType given (0 a page, 1 a reduced-resolution copy), all sharing the same pixels."""
    row_bytes = width * samples * bits // 8
    out = bytearray(b"II*\0\0\0\0\0") + (bytes(row_bytes * height) if pixels is None else pixels)
    link = 4  # where the offset of the next directory is written
    for subfile in subfile_types:
        out += b"\0" * (len(out) % 2)  # directories start on a word boundary
        struct.pack_into("<I", out, link, len(out))
        tags = [(254, 4, [subfile]), (256, 4, [width]), (257, 4, [height]), (258, 3, [bits] * samples),
                (259, 3, [1]), (262, 3, [2 if samples >= 3 else 1]), (273, 4, [8]), (277, 3, [samples]),
                (278, 4, [height]), (279, 4, [row_bytes * height])]
        values_at, values = len(out) + 2 + 12 * len(tags) + 4, bytearray()  # values over 4 bytes follow
        out += struct.pack("<H", len(tags))
        for tag, kind, numbers in tags:
            packed = struct.pack(f"<{len(numbers)}{'I' if kind == 4 else 'H'}", *numbers)
            out += struct.pack("<HHI", tag, kind, len(numbers))
            if len(packed) <= 4:
                out += packed.ljust(4, b"\0")
            else:
                out += struct.pack("<I", values_at + len(values))
                values += packed
        link = len(out)
        out += b"\0\0\0\0" + values
    return bytes(out)


def bmp_header(width: int, height: int) -> bytes:
    """The 54-byte header of a 24-bit bitmap of width x height pixels, and no pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


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


def frames_of(count: int, width: int = 160, height: int = 120, scenes: tuple[int, ...] = (0,)) -> list[Image.Image]:
    """`count` frames of slow motion (a picture sliding a pixel per frame), starting a new scene (a different
    picture) at each frame index listed in `scenes`."""
    frames, base = [], picture(width, height)
    for index in range(count):
        if index in scenes:
            base = picture(width, height, seed=index + 1)
            if scenes.index(index) % 2:
                base = Image.eval(base, lambda v: 255 - v)  # a scene unlike the last: a cut
        frames.append(base.transform(base.size, Image.Transform.AFFINE, (1, 0, index % 8, 0, 1, 0)))
    return frames


def animated(fmt: str, count: int = 6, duration_ms: int = 500, width: int = 160, height: int = 120,
             scenes: tuple[int, ...] = (0,)) -> bytes:
    """An animation of `count` frames, each shown `duration_ms`, as GIF, WEBP or PNG (APNG), made by Pillow."""
    frames = frames_of(count, width, height, scenes)
    if fmt == "GIF":
        frames = [frame.convert("P", palette=Image.Palette.ADAPTIVE) for frame in frames]
    options: dict[str, object] = {"quality": 90} if fmt == "WEBP" else {}
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=duration_ms, loop=0,
                  **options)


def gif_declaring_frames(count: int, frame_width: int = 1, frame_height: int = 1) -> bytes:
    """A GIF of `count` frames of frame_width x frame_height declared pixels (holding one) on a 2x2 canvas,
    written block by block: a tiny file that declares a huge animation."""
    head = b"GIF89a" + struct.pack("<HHBBB", 2, 2, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    frame = (b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control: 100 ms
             + b"\x2c" + struct.pack("<HHHHB", 0, 0, frame_width, frame_height, 0) + b"\x02\x02\x44\x01\x00")
    return head + frame * count + b"\x3b"


def _gif_frame_data(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each frame's LZW sub-blocks in a GIF."""
    at = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    spans = []
    while at < len(data) and data[at] != 0x3B:
        is_frame = data[at] == 0x2C
        if is_frame:  # image descriptor, local colour table, LZW code size, then sub-blocks
            flags = data[at + 9]
            at += 11 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
        else:  # extension: introducer, label, then sub-blocks
            at += 2
        start = at
        while data[at]:
            at += 1 + data[at]
        at += 1
        if is_frame:
            spans.append((start, at))
    return spans


def gif_with_corrupt_frame(*corrupt: int, count: int = 6, duration_ms: int = 500) -> bytes:
    """An animated GIF whose frames numbered in `corrupt` have their picture data overwritten (their block
    sizes kept): those frames do not decode, the others do."""
    data = bytearray(animated("GIF", count=count, duration_ms=duration_ms, width=96, height=96))
    spans = _gif_frame_data(bytes(data))
    for index in corrupt:
        at = spans[index][0]
        while data[at]:
            size = data[at]
            data[at + 1 : at + 1 + size] = b"\xff" * size
            at += 1 + size
    return bytes(data)


def webp_with_frame_outside_canvas(frame: int = 1) -> bytes:
    """An animated WebP whose frame `frame` declares a width beyond the canvas (Pillow refuses to write frames
    of another size than the first, so the ANMF chunk is edited)."""
    data = bytearray(animated("WEBP", count=3, width=96, height=96))
    at, seen = 12, 0
    while at + 8 <= len(data):
        kind, length = struct.unpack_from("<4sI", data, at)
        if kind == b"ANMF":
            if seen == frame:
                data[at + 8 + 6 : at + 8 + 9] = (400 - 1).to_bytes(3, "little")  # width - 1
                return bytes(data)
            seen += 1
        at += 8 + length + (length & 1)
    raise AssertionError("no such frame")
