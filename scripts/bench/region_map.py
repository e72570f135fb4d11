#!/usr/bin/env python3
"""Extra worker time of the evidence features on 1 MP and 12 MP JPEGs, against the bare verdict in the same run:
the region map (decode again + every region scored, as its task does) and the watermark reader (inside the
verdict's PROVENANCE stage).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench/region_map.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a clone without installing

from detector import SIZES, synthetic_photo  # noqa: E402

from pixelcheck.analysis.detector import DEFAULT_MODEL_DIR, Detector, load_detector  # noqa: E402
from pixelcheck.analysis.detector.image_facts import decode_rgb, open_image  # noqa: E402
from pixelcheck.analysis.detector.regions import region_grid  # noqa: E402
from pixelcheck.analysis.detector.watermarks import find_watermarks  # noqa: E402


def timed(action: Callable[[], object], runs: int) -> float:
    """Median milliseconds of action over runs (after one warm-up)."""
    action()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def measure(detector: Detector, name: str, width: int, height: int, runs: int) -> str:
    """One table row: the verdict, the map task's work and the watermark reader on one synthetic JPEG."""
    data = synthetic_photo(width, height, seed=1)
    grid = region_grid(width, height)
    assert grid is not None
    rgb = decode_rgb(open_image(data))

    def region_map() -> None:
        picture = decode_rgb(open_image(data))
        for row in range(grid.rows):
            detector.score_regions(picture, grid.row_boxes(row), regions=len(grid.boxes))

    verdict = timed(lambda: detector.analyze(data), runs)
    mapping = timed(region_map, runs)
    marks = timed(lambda: find_watermarks(rgb), runs)
    return (f"| {name} | {grid.rows}x{grid.columns} | {verdict:.0f} | {mapping:.0f} | {mapping / verdict:.2f}x "
            f"| {marks:.0f} | {marks / verdict:.0%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    detector = load_detector(DEFAULT_MODEL_DIR)
    print("| image | grid | verdict (baseline) ms | region map task ms | map / verdict | watermark reader ms "
          "| reader / verdict |")
    print("|---|---|---|---|---|---|---|")
    for name, (width, height) in {**SIZES, "1 MP square (the densest grid at 1 MP)": (1024, 1024)}.items():
        print(measure(detector, name, width, height, args.runs), flush=True)

if __name__ == "__main__":
    main()
