"""Invisible watermarks that image generators embed in the pixels: the `invisible-watermark` dwtDct marks.

Stable Diffusion's reference scripts (1.x: the bytes "StableDiffusionV1"; 2.x: "SDV2") and the SDXL
pipelines (a fixed 48-bit pattern) hide their mark with the dwtDct method of the `invisible-watermark`
package: in the U channel (YUV) of the picture, the Haar LL band is cut into 4x4 blocks, and in each block
the largest coefficient (the DC one aside) is quantised to step 36 so that its remainder says one bit;
bit i of the message goes into every block whose raster index is i modulo the message length.

Decoding needs no OpenCV, no PyWavelets and no torch: the Haar LL band of an 8x8 pixel block is half of
each 2x2 sum, which numpy computes directly. Both channel orders are read because some pipelines handed
the encoder RGB where it expects BGR, which swaps red and blue in the colour transform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

_STEP = 36.0  # the dwtDct quantisation step of the U channel (the package's default scales=[0, 36, 36])
_BLOCK = 8  # pixels per side of one 4x4 block of the half-resolution LL band
_STRIP_ROWS = 256  # half-size rows converted at a time: a 50 MP picture is never held as floats at once
_MAX_BLOCKS = 32_768  # every bit repeats across the whole picture: ~240 votes per bit are plenty (2 MP read)
_MIN_PIXELS = 256 * 256  # the encoder refuses smaller pictures, so nothing smaller carries a mark
# U = 0.492 (B - Y) + 128 with Y = 0.299 R + 0.587 G + 0.114 B, as OpenCV's BGR2YUV computes it.
_U_FROM_RGB = np.array([-0.492 * 0.299, -0.492 * 0.587, 0.492 * (1 - 0.114)], dtype=np.float32)


def _bits(value: int, length: int) -> tuple[int, ...]:
    return tuple((value >> (length - 1 - i)) & 1 for i in range(length))


def _bytes_bits(text: bytes) -> tuple[int, ...]:
    return tuple(int(b) for b in np.unpackbits(np.frombuffer(text, dtype=np.uint8)))


@dataclass(frozen=True)
class WatermarkScheme:
    """One known message: who writes it, and the longest bit-error count still taken as a match."""

    name: str
    generator: str
    message: str  # how the message reads, for people
    bits: tuple[int, ...]
    max_errors: int


# The method misreads some bits on smooth pictures (the reference decoder too), so a few errors are allowed;
# the chance that random bits match this well stays below 1e-7 (SD 2's short message) and 1e-9 (the others).
SCHEMES: tuple[WatermarkScheme, ...] = (
    WatermarkScheme("stable-diffusion-1", "Stable Diffusion 1.x", '"StableDiffusionV1"',
                    _bytes_bits(b"StableDiffusionV1"), 16),
    WatermarkScheme("stable-diffusion-2", "Stable Diffusion 2.x", '"SDV2"', _bytes_bits(b"SDV2"), 2),
    WatermarkScheme("stable-diffusion-xl", "Stable Diffusion XL", "the SDXL 48-bit pattern",
                    _bits(0b101100111110110010010000011110111011000110011110, 48), 4),
)


@dataclass(frozen=True)
class WatermarkFinding:
    """A known mark read from the pixels."""

    scheme: str
    generator: str
    message: str
    matching_bits: int
    total_bits: int

    @property
    def description(self) -> str:
        """One plain line, e.g. 'Stable Diffusion 1.x invisible watermark ("StableDiffusionV1", 136 of 136 bits)'."""
        return (f"{self.generator} invisible watermark ({self.message}, "
                f"{self.matching_bits} of {self.total_bits} bits)")


def block_bits(half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bit each 8x8 pixel block carries, in the encoder's raster order, from the picture's 2x2 means
    (an RGB uint8 array of half the size): as encoded from RGB taken for RGB, and from RGB taken for BGR."""
    height, width = half.shape[0] // 4 * 4, half.shape[1] // 4 * 4
    weights = np.stack([_U_FROM_RGB, _U_FROM_RGB[::-1]], axis=1) * 2.0  # LL = (sum of 4 U values) / 2
    strips: list[np.ndarray] = []
    for top in range(0, height, _STRIP_ROWS):
        means = half[top:min(top + _STRIP_ROWS, height), :width, :3].astype(np.float32)
        low = means @ weights + 256.0  # Haar LL band of U, for both channel orders
        rows, cols = low.shape[:2]
        blocks = low.reshape(rows // 4, 4, cols // 4, 4, 2).transpose(4, 0, 2, 1, 3).reshape(2, -1, 16)
        strongest = np.abs(blocks[:, :, 1:]).argmax(axis=2) + 1
        value = np.abs(np.take_along_axis(blocks, strongest[:, :, None], axis=2)[:, :, 0])
        strips.append(np.mod(value, _STEP) > _STEP / 2)
    if not strips:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)
    both = np.concatenate(strips, axis=1)
    return both[0], both[1]


def decode_message(bits_per_block: np.ndarray, length: int) -> np.ndarray:
    """Majority vote of every block that carries bit i (i = block index modulo length)."""
    usable = bits_per_block.size // length * length
    if usable == 0:
        return np.zeros(length, dtype=bool)
    votes = bits_per_block[:usable].reshape(-1, length).mean(axis=0)
    # Blocks past the last whole repetition still vote, as in the reference decoder.
    rest = bits_per_block[usable:]
    if rest.size:
        count = usable // length
        votes[: rest.size] = (votes[: rest.size] * count + rest) / (count + 1)
    return votes * 255 > 127


def find_watermarks(rgb: Image.Image) -> tuple[WatermarkFinding, ...]:
    """Every known invisible watermark in a decoded RGB picture (usually none: absence proves nothing)."""
    if rgb.width * rgb.height < _MIN_PIXELS:
        return ()
    # Pillow's 2x2 box reduction stands in for the 2x2 sums of the Haar LL band (C speed; its rounding moves
    # a coefficient by less than 1, against a margin of 9), and the colour transform is linear, so it runs
    # on a quarter of the values.
    # Only the first block rows are read on large pictures: they hold every bit many times over, and the
    # block numbering the message depends on starts there.
    width = rgb.width // _BLOCK * _BLOCK
    rows = min(rgb.height // _BLOCK, max(1, -(-_MAX_BLOCKS // max(1, width // _BLOCK))))
    half = np.asarray(rgb.crop((0, 0, width, rows * _BLOCK)).reduce(2))
    found: dict[str, WatermarkFinding] = {}
    for blocks in block_bits(half):
        for scheme in SCHEMES:
            if scheme.name in found or blocks.size < len(scheme.bits):
                continue
            decoded = decode_message(blocks, len(scheme.bits))
            matching = int((decoded == np.array(scheme.bits, dtype=bool)).sum())
            if len(scheme.bits) - matching <= scheme.max_errors:
                found[scheme.name] = WatermarkFinding(scheme.name, scheme.generator, scheme.message, matching,
                                                      len(scheme.bits))
    return tuple(found.values())
