#!/usr/bin/env python3
"""One server process vs N (`pixelcheck serve --processes N`, SO_REUSEPORT): GetCurrentUser throughput and
UploadImage throughput at 8 and 32 callers, spread over several connections (each connection lands on one
process), next to the bare grpc.aio echo and sink driven the same way. Target: N processes >= 1.5x one
process for GetCurrentUser at 32 callers on a 2-core machine.

    .venv/bin/python scripts/bench/processes.py [--processes N] [--seconds 4] [--uploads 48]
        [--database-url URL] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from stack import HERE, add_stack_arguments, baseline_server, pixelcheck_stack, print_table

CONCURRENCY = (8, 32)
CONNECTIONS = 8
GET_CURRENT_USER = "/pixelcheck.v1.AuthService/GetCurrentUser"
UPLOAD_IMAGE = "/pixelcheck.v1.IngestionService/UploadImage"


def load(*arguments: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(HERE / "load.py"), *arguments, str(CONNECTIONS)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def one_megapixel_png(folder: Path) -> Path:
    """A 1152x864 noise PNG (about 3 MiB); load.py makes every upload's bytes distinct."""
    pixels = np.random.default_rng(3).integers(0, 256, (864, 1152, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    path = folder / "one-mp.png"
    path.write_bytes(buffer.getvalue())
    return path


def rate(result: dict[str, Any]) -> float:
    return float(result["calls"]) / float(result["wall_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--uploads", type=int, default=48, help="uploads per cell")
    add_stack_arguments(parser)
    args = parser.parse_args()
    png = one_megapixel_png(Path(tempfile.mkdtemp(prefix="pixelcheck-bench-png-")))
    counts = (1, args.processes)
    unary: dict[tuple[int, int], float] = {}
    uploads: dict[tuple[int, int], float] = {}
    with baseline_server() as (baseline_address, _):
        echo = {c: rate(load("unary", baseline_address, "/bench.Baseline/Echo", str(args.seconds), str(c), ""))
                for c in CONCURRENCY}
        sink = {c: rate(load("upload", baseline_address, "/bench.Baseline/Sink", str(args.uploads), str(c),
                             str(png), "")) for c in CONCURRENCY}
        for processes in counts:
            with pixelcheck_stack(args, server_processes=processes) as stack:
                for c in CONCURRENCY:
                    unary[processes, c] = rate(load("unary", stack.address, GET_CURRENT_USER, str(args.seconds),
                                                    str(c), stack.token))
                    uploads[processes, c] = rate(load("upload", stack.address, UPLOAD_IMAGE, str(args.uploads),
                                                      str(c), str(png), stack.token))
    n = args.processes
    rows = [[str(c), f"{echo[c]:,.0f}", f"{unary[1, c]:,.0f}", f"{unary[n, c]:,.0f}",
             f"{unary[n, c] / unary[1, c]:.2f}x", f"{unary[1, c] / echo[c]:.0%} / {unary[n, c] / echo[c]:.0%}"]
            for c in CONCURRENCY]
    print_table(f"GetCurrentUser, 1 vs {n} server processes (calls/s, {args.seconds:g} s per cell, "
                f"{CONNECTIONS} connections; target {n} processes >= 1.5x at 32 callers)",
                ["callers", "echo", "1 process", f"{n} processes", "speed-up", "share of echo (1 / N)"], rows)
    rows = [[str(c), f"{sink[c]:,.1f}", f"{uploads[1, c]:,.1f}", f"{uploads[n, c]:,.1f}",
             f"{uploads[n, c] / uploads[1, c]:.2f}x"] for c in CONCURRENCY]
    print_table(f"UploadImage of a 1 MP PNG (~3 MiB), 1 vs {n} server processes (uploads/s, {args.uploads} per cell)",
                ["callers", "bare sink", "1 process", f"{n} processes", "speed-up"], rows)


if __name__ == "__main__":
    main()
