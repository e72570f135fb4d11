#!/usr/bin/env python3
"""Inference benchmark of the detector on one core: 1 MP and 12 MP JPEGs, per-stage timings.

OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python scripts/bench/detector.py [--model DIR] [--runs 10]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a clone without installing

from pixelcheck.analysis.detector import DEFAULT_MODEL_DIR, Stage, load_detector  # noqa: E402

SIZES = {"1 MP": (1152, 864), "12 MP": (4032, 3024)}


def synthetic_photo(width: int, height: int, seed: int) -> bytes:
    """A camera-like JPEG (q90, smooth structure plus grain) of the given size."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray((rng.random((height // 32, width // 32, 3)) * 255).astype(np.uint8))
    smooth = np.asarray(coarse.resize((width, height), Image.BICUBIC), dtype=np.float32)
    grain = rng.normal(0, 4, smooth.shape).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def main() -> int:
    """Print a table of median and p90 timings per stage and in total."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    detector = load_detector(args.model)
    print(f"model {detector.model_version}")
    columns = ("decode", "provenance", "pixel", "fusion", "total", "p90")
    print(f"{'image':>7} {'bytes':>9} " + " ".join(f"{c:>10}" for c in columns) + "  (ms)")
    for label, (width, height) in SIZES.items():
        data = synthetic_photo(width, height, seed=width)
        detector.analyze(data)  # warm-up: lazy imports, onnxruntime first run
        stage_times: dict[Stage, list[float]] = {}
        totals = []
        for _ in range(args.runs):
            marks: list[tuple[Stage, float]] = []
            started = time.perf_counter()
            detector.analyze(data, on_stage=lambda stage, into=marks: into.append((stage, time.perf_counter())))
            ended = time.perf_counter()
            totals.append((ended - started) * 1000)
            for (stage, at), (_, following) in zip(marks, [*marks[1:], (Stage.DONE, ended)], strict=True):
                stage_times.setdefault(stage, []).append((following - at) * 1000)
        cells = [
            statistics.median(stage_times[s])
            for s in (Stage.DECODING, Stage.PROVENANCE, Stage.PIXEL_MODEL, Stage.FUSION)
        ]
        p90 = sorted(totals)[int(0.9 * (len(totals) - 1))]
        cells.extend([statistics.median(totals), p90])
        print(f"{label:>7} {len(data):>9} " + " ".join(f"{c:>10.1f}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
