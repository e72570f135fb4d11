"""The region map's grid and its plain-language reading."""

from __future__ import annotations

import pytest

from pixelcheck.analysis.detector.pixel_model import region_crop
from pixelcheck.analysis.detector.regions import MAP_PIXELS, disagreement, region_crop_size, region_grid


@pytest.mark.parametrize(("size", "shape"), [((4000, 3000), (8, 8)), ((1152, 864), (6, 8)), ((640, 480), (3, 5)),
                                             ((256, 256), (2, 2)), ((1000, 130), (1, 7))])
def test_grid_has_at_most_eight_regions_a_side_of_at_least_128_pixels_and_tiles_the_image(size, shape):
    grid = region_grid(*size)
    assert grid is not None and (grid.rows, grid.columns) == shape
    width, height = size
    assert sum((r - x) * (b - y) for x, y, r, b in grid.boxes) == width * height
    assert {(x, r) for x, _, r, _ in grid.boxes} == {(x, r) for x, _, r, _ in grid.row_boxes(0)}
    assert all(r - x >= 128 and b - y >= 128 for x, y, r, b in grid.boxes)
    assert grid.boxes[0][:2] == (0, 0) and grid.boxes[-1][2:] == size


@pytest.mark.parametrize("size", [(200, 100), (127, 4000), (255, 255)])
def test_images_that_cannot_be_cut_into_two_regions_have_no_grid(size):
    assert region_grid(*size) is None


@pytest.mark.parametrize(("size", "side"), [((4000, 3000), 104), ((1024, 1024), 104), ((1152, 864), 120),
                                            ((640, 480), 128), ((256, 256), 128)])
def test_a_whole_map_reads_at_most_its_pixel_budget_and_never_more_than_128_pixels_a_region(size, side):
    grid = region_grid(*size)
    assert grid is not None
    crop = region_crop_size(len(grid.boxes))
    assert crop == side and crop % 8 == 0
    assert len(grid.boxes) * crop * crop <= MAP_PIXELS


@pytest.mark.parametrize("box", [(0, 0, 144, 144), (144, 288, 288, 432), (503, 375, 1007, 753), (13, 7, 141, 200)])
def test_a_region_is_read_through_one_centred_crop_inside_it_on_the_jpeg_block_grid_where_it_fits(box):
    left, top, right, bottom = box
    x, y, side = region_crop(box, 128)
    assert side == min(128, right - left, bottom - top)
    assert left <= x and x + side <= right and top <= y and y + side <= bottom
    assert abs((x + side / 2) - (left + right) / 2) <= 8 and abs((y + side / 2) - (top + bottom) / 2) <= 8
    fits_aligned = any(left <= a and a + side <= right for a in range(0, right, 8))
    assert x % 8 == 0 or not fits_aligned


def test_a_region_under_64_pixels_a_side_is_not_read():
    assert region_crop((0, 0, 63, 500), 128) is None
    assert region_crop((0, 0, 64, 64), 128) == (0, 0, 64)


def test_regions_that_agree_say_nothing():
    grid = region_grid(1024, 1024)
    assert grid is not None
    assert disagreement(grid, [0.3 + 0.01 * (i % 10) for i in range(64)]) == ""
    one_odd = [0.1] * 63 + [0.95]  # one noisy region is not a composite
    assert disagreement(grid, one_odd) == ""


def test_strongly_disagreeing_sides_are_named_in_plain_language():
    grid = region_grid(1024, 1024)
    assert grid is not None
    probs = [0.92 if i % 8 < 3 else 0.07 if i % 8 > 4 else 0.5 for i in range(64)]
    sentence = disagreement(grid, probs)
    assert sentence.startswith("Regions towards the left and towards the right of the image score very differently")
    assert "(92% and 7% AI)" in sentence and "composite or partly edited" in sentence
