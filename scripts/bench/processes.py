#!/usr/bin/env python3
"""One server process vs N (`pixelcheck serve --processes N`, SO_REUSEPORT): GetCurrentUser throughput and
UploadImage throughput at 8 and 32 callers, spread over several connections (each connection lands on one
process), next to the bare grpc.aio echo and sink driven the same way. Targets: N processes >= 1.5x one
process for GetCurrentUser at 32 callers, >= 1.3x for uploads at 8 and 32 callers, on a 2-core machine.

The upload cells measure the server, not the per-account limits: the bench account's upload rate limit and
queue cap are off (with them, one account is held to its 10 uploads/s whatever the server could take).
Where the CPU went is printed per upload cell: CPU milliseconds per upload of the server processes, the
load generator and the database and Redis servers on this machine (their whole CPU, others' work included:
read it on a quiet machine).

    .venv/bin/python scripts/bench/processes.py [--processes N] [--seconds 4] [--uploads 48]
        [--database-url URL] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from stack import (
    HERE,
    Stack,
    add_stack_arguments,
    baseline_server,
    pids_named,
    pixelcheck_stack,
    print_table,
    tree_cpu_seconds,
)

CONCURRENCY = (8, 32)
NO_ACCOUNT_LIMITS = {"upload_rate_limits": "USER=0,PROFESSIONAL=0,ADMIN=0,SERVICE=0",
                     "admission_pending_caps": "USER=0,PROFESSIONAL=0,ADMIN=0,SERVICE=0",
                     "admission_service_pending_cap": 0}
SERVERS_ON_THIS_MACHINE = ("mariadbd", "redis-server", "valkey-server")
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


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the load generators this process waited for
    return usage.ru_utime + usage.ru_stime


def cpu_snapshot(stack: Stack) -> dict[str, float]:
    assert stack.server is not None
    snapshot = {"server": tree_cpu_seconds(stack.server.pid), "load generator": children_cpu_seconds()}
    for name in SERVERS_ON_THIS_MACHINE:
        snapshot[name] = sum(tree_cpu_seconds(pid) for pid in pids_named(name))
    return snapshot


def measured_upload(stack: Stack, callers: int, count: int, png: Path) -> tuple[float, dict[str, float], list[str]]:
    """Uploads/s, CPU ms per upload by process kind, and the failed calls' codes."""
    before = cpu_snapshot(stack)
    result = load("upload", stack.address, UPLOAD_IMAGE, str(count), str(callers), str(png), stack.token)
    after = cpu_snapshot(stack)
    done = max(1, int(result["calls"]))
    cpu = {name: (after[name] - before[name]) * 1000 / done for name in before if after[name] > before[name]}
    return rate(result), cpu, list(result["failures"])


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
    cpu: dict[tuple[int, int], dict[str, float]] = {}
    failures: dict[tuple[int, int], list[str]] = {}
    with baseline_server() as (baseline_address, _):
        echo = {c: rate(load("unary", baseline_address, "/bench.Baseline/Echo", str(args.seconds), str(c), ""))
                for c in CONCURRENCY}
        sink = {c: rate(load("upload", baseline_address, "/bench.Baseline/Sink", str(args.uploads), str(c),
                             str(png), "")) for c in CONCURRENCY}
        for processes in counts:
            with pixelcheck_stack(args, server_processes=processes, **NO_ACCOUNT_LIMITS) as stack:
                for c in CONCURRENCY:
                    unary[processes, c] = rate(load("unary", stack.address, GET_CURRENT_USER, str(args.seconds),
                                                    str(c), stack.token))
                    uploads[processes, c], cpu[processes, c], failures[processes, c] = measured_upload(
                        stack, c, args.uploads, png)
    n = args.processes
    rows = [[str(c), f"{echo[c]:,.0f}", f"{unary[1, c]:,.0f}", f"{unary[n, c]:,.0f}",
             f"{unary[n, c] / unary[1, c]:.2f}x", f"{unary[1, c] / echo[c]:.0%} / {unary[n, c] / echo[c]:.0%}"]
            for c in CONCURRENCY]
    print_table(f"GetCurrentUser, 1 vs {n} server processes (calls/s, {args.seconds:g} s per cell, "
                f"{CONNECTIONS} connections; target {n} processes >= 1.5x at 32 callers)",
                ["callers", "echo", "1 process", f"{n} processes", "speed-up", "share of echo (1 / N)"], rows)
    rows = [[str(c), f"{sink[c]:,.1f}", f"{uploads[1, c]:,.1f}", f"{uploads[n, c]:,.1f}",
             f"{uploads[n, c] / uploads[1, c]:.2f}x"] for c in CONCURRENCY]
    print_table(f"UploadImage of a 1 MP PNG (~3 MiB), 1 vs {n} server processes (uploads/s, {args.uploads} per cell; "
                f"target {n} processes >= 1.3x)", ["callers", "bare sink", "1 process", f"{n} processes", "speed-up"],
                rows)
    kinds = sorted({kind for cell in cpu.values() for kind in cell})
    print_table("Where the CPU went per upload (ms of CPU per upload; failed uploads by code)",
                ["processes", "callers", *kinds, "total", "failed"],
                [[str(p), str(c), *(f"{cpu[p, c].get(kind, 0.0):.1f}" for kind in kinds),
                  f"{sum(cpu[p, c].values()):.1f}", ", ".join(failures[p, c]) or "0"]
                 for p in counts for c in CONCURRENCY])


if __name__ == "__main__":
    main()
