#!/usr/bin/env python3
"""Upload throughput: a bare client-streaming sink vs UploadImage of a ~10 MiB PNG in 1 MiB chunks (each
upload distinct, so dedupe never short-cuts), from a separate process, plus the server's peak RSS.
Target: >= 60% of the baseline, memory per upload bounded. One row per blob store (database, filesystem, and s3
on a moto server process started here) and number of streams.

    .venv/bin/python scripts/bench/upload.py [--count 12] [--stores database,filesystem,s3] [--database-url URL]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from stack import (
    HERE,
    MIB,
    add_stack_arguments,
    baseline_server,
    distribution,
    pixelcheck_stack,
    print_table,
    rss_kib,
    s3_server,
)

CONCURRENCY = (1, 4)


def ten_mib_png() -> bytes:
    """An incompressible RGB PNG just under the 10 MiB upload limit."""
    side = 1860
    pixels = np.random.default_rng(10).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def drive(address: str, method: str, count: int, concurrency: int, png: Path, token: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(HERE / "load.py"), "upload", address, method, str(count),
                          str(concurrency), str(png), token], check=True, capture_output=True, text=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=12, help="uploads per cell")
    parser.add_argument("--stores", default="database,filesystem,s3", help="blob stores to measure, comma-separated")
    add_stack_arguments(parser)
    args = parser.parse_args()
    data = ten_mib_png()
    assert len(data) < 10 * MIB - 256, len(data)
    png = Path(tempfile.mkdtemp(prefix="pixelcheck-bench-png-")) / "ten.png"
    png.write_bytes(data)
    rows = []
    with baseline_server() as (sink_address, sink):
        baselines = {c: drive(sink_address, "/bench.Baseline/Sink", args.count, c, png, "") for c in CONCURRENCY}
        sink_peak = rss_kib(sink.pid, "VmHWM")
    for store in args.stores.split(","):
        with contextlib.ExitStack() as scope:
            overrides = scope.enter_context(s3_server()) if store == "s3" else {"blob_store": store}
            stack = scope.enter_context(pixelcheck_stack(args, **overrides))
            assert stack.server is not None
            idle_kib = rss_kib(stack.server.pid)
            for concurrency in CONCURRENCY:
                base = baselines[concurrency]
                ours = drive(stack.address, "/pixelcheck.v1.IngestionService/UploadImage", args.count,
                             concurrency, png, stack.token)
                base_rate, our_rate = base["calls"] / base["wall_s"], ours["calls"] / ours["wall_s"]
                peak_kib = rss_kib(stack.server.pid, "VmHWM")
                rows.append([store, str(concurrency), f"{base_rate:.1f} ({base_rate * len(data) / MIB:.0f} MiB/s)",
                             f"{our_rate:.1f} ({our_rate * len(data) / MIB:.0f} MiB/s)", f"{our_rate / base_rate:.0%}",
                             distribution(base["latencies_ms"]), distribution(ours["latencies_ms"]),
                             f"{sink_peak / 1024:.0f}", f"{idle_kib / 1024:.0f} -> {peak_kib / 1024:.0f}",
                             f"{(peak_kib - idle_kib) / 1024 / concurrency:.0f}", str(len(ours["failures"]))])
    png.unlink()
    print_table(f"Upload throughput (uploads/s of a {len(data) / MIB:.2f} MiB PNG in 1 MiB chunks; {args.count} "
                f"uploads per cell; target >= 60%)",
                ["blob store", "streams", "sink baseline", "PixelCheck", "ratio", "sink p50/p95/p99 ms",
                 "PixelCheck p50/p95/p99 ms",
                 "sink peak RSS MiB", "server RSS idle -> peak MiB", "peak MiB per stream", "failures"], rows)


if __name__ == "__main__":
    main()
