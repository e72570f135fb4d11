#!/usr/bin/env python3
"""False positives of the invisible-watermark reader: how many images of a folder it finds a mark in, and
its time per megapixel. On real photographs the count must be about 0.

    .venv/bin/python scripts/bench/watermarks.py ../shared/data/detector/real [more folders...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from PIL import Image

from pixelcheck.analysis.detector.watermarks import find_watermarks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args()
    for folder in args.folders:
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        found, seconds, pixels, readable = [], 0.0, 0, 0
        for path in files:
            try:
                rgb = Image.open(path).convert("RGB")
            except OSError:
                continue
            readable += 1
            started = time.perf_counter()
            marks = find_watermarks(rgb)
            seconds += time.perf_counter() - started
            pixels += rgb.width * rgb.height
            if marks:
                found.append((path.name, [m.description for m in marks]))
        print(f"{folder}: {len(found)} of {readable} images carry a mark "
              f"({len(found) / max(1, readable):.3%}); {seconds * 1000 / max(1, pixels / 1e6):.1f} ms per MP")
        for name, descriptions in found:
            print(f"  {name}: {'; '.join(descriptions)}")


if __name__ == "__main__":
    main()
