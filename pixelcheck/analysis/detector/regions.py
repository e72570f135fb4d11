"""The region map's geometry and reading: a grid over the whole image, and what its scores say in words.

The grid has at most 8x8 regions; each region is at least MIN_REGION pixels on a side (the size the pixel
model was trained on: smaller reads are noise), so small images get fewer regions. Region edges fall at
round(i * side / count): the regions tile the image exactly, every pixel in exactly one region.

The pixel model reads each region through one centred square crop (pixel_model.region_crop) of
region_crop_size() pixels: REGION_CROP, the region size of the training pool's pictures that the region head
learned from, or less on a dense grid, so that a whole map reads at most MAP_PIXELS whatever the picture's
size (0.69 MP: an 8x8 grid read through 104 px crops; a verdict reads 0.4 MP, so a map costs about a verdict and
a half, not one verdict per region). On the pool's test regions, crops of 104 px land on the right side about as
often as crops of 128 px, crops of 96 px clearly less often (README, "Region map").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_CELLS = 8
MIN_REGION = 128
REGION_CROP = 128
MAP_PIXELS = 64 * 104 * 104  # an 8x8 grid read through crops of 104 px
# "Disagree strongly": some regions read clearly AI and others clearly real, each side backed by at
# least two regions and a tenth of the grid, so that one noisy region never makes the sentence.
HIGH, LOW = 0.8, 0.2
MIN_SHARE = 0.1

Box = tuple[int, int, int, int]  # left, top, right, bottom in image pixels (right and bottom exclusive)


@dataclass(frozen=True)
class RegionGrid:
    rows: int
    columns: int
    boxes: tuple[Box, ...]  # row by row

    def row_boxes(self, row: int) -> list[Box]:
        return list(self.boxes[row * self.columns : (row + 1) * self.columns])


@dataclass(frozen=True)
class RegionScore:
    row: int
    column: int
    box: tuple[int, int, int, int]
    prob_ai: float


@dataclass(frozen=True)
class RegionMapView:
    """A region map as callers and reports see it."""

    state: str  # PENDING, READY, UNAVAILABLE, FAILED, or "" before the verdict
    rows: int = 0
    columns: int = 0
    regions: tuple[RegionScore, ...] = ()
    disagreement: str = ""
    reason: str = ""
    progress: float = 0.0


def _cells(side: int) -> int:
    return max(0, min(MAX_CELLS, side // MIN_REGION))


def region_grid(width: int, height: int) -> RegionGrid | None:
    """The grid for an image of this size; None when it cannot be cut into at least two regions."""
    columns, rows = _cells(width), _cells(height)
    if columns == 0 or rows == 0 or columns * rows < 2:
        return None
    xs = [round(i * width / columns) for i in range(columns + 1)]
    ys = [round(i * height / rows) for i in range(rows + 1)]
    boxes = tuple((xs[c], ys[r], xs[c + 1], ys[r + 1]) for r in range(rows) for c in range(columns))
    return RegionGrid(rows, columns, boxes)


def region_crop_size(regions: int) -> int:
    """Side of the crop each region of a map with this many regions is read through (a multiple of 8)."""
    return min(REGION_CROP, int(math.sqrt(MAP_PIXELS / max(1, regions))) // 8 * 8)


def unavailable_reason(width: int, height: int) -> str:
    """Why an image of this size has no region map."""
    return (f"The image ({width}x{height} pixels) is too small to cut into regions of at least "
            f"{MIN_REGION}x{MIN_REGION} pixels.")


def _place(grid: RegionGrid, indices: list[int]) -> str:
    """Where a set of regions lies, in words ('the top left', 'the centre', ...)."""
    row = sum(i // grid.columns + 0.5 for i in indices) / len(indices) / grid.rows
    column = sum(i % grid.columns + 0.5 for i in indices) / len(indices) / grid.columns
    vertical = "top" if row < 1 / 3 else "bottom" if row > 2 / 3 else ""
    horizontal = "left" if column < 1 / 3 else "right" if column > 2 / 3 else ""
    if not vertical and not horizontal:
        return "the centre"
    if vertical and horizontal:
        return f"the {vertical} {horizontal}"
    return f"the {vertical or horizontal}"


def disagreement(grid: RegionGrid, probabilities: list[float]) -> str:
    """A plain-language sentence when regions disagree strongly, else ''."""
    high = [i for i, p in enumerate(probabilities) if p >= HIGH]
    low = [i for i, p in enumerate(probabilities) if p <= LOW]
    needed = max(2, round(MIN_SHARE * len(probabilities)))
    if len(high) < needed or len(low) < needed:
        return ""
    high_mean = sum(probabilities[i] for i in high) / len(high)
    low_mean = sum(probabilities[i] for i in low) / len(low)
    where_high, where_low = _place(grid, high), _place(grid, low)
    if where_high == where_low:
        parts = f"Parts of the image score very differently ({len(high)} regions around {high_mean:.0%} AI, " \
                f"{len(low)} around {low_mean:.0%})"
    else:
        parts = (f"Regions towards {where_high} and towards {where_low} of the image score very differently "
                 f"({high_mean:.0%} and {low_mean:.0%} AI)")
    return f"{parts}: the image may be a composite or partly edited, or the model may be unsure of it."
