#!/usr/bin/env python3
"""Unary RPC throughput: the bare grpc.aio echo server vs an authenticated, audited PixelCheck
GetCurrentUser, at 1, 8 and 32 concurrent callers driven from a separate process. Target: >= 60%.
The same run also measures a second PixelCheck server with tracing on (every span exported over OTLP to a
receiver in this process), to show what tracing costs and that it costs nothing while off.

    .venv/bin/python scripts/bench/unary.py [--seconds 5] [--database-url URL] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from stack import HERE, add_stack_arguments, baseline_server, distribution, pixelcheck_stack, print_table

sys.path.insert(0, str(HERE.parents[1]))  # the test OTLP receiver, from a clone
from tests.e2e.otlp_receiver import OtlpReceiver  # noqa: E402

CONCURRENCY = (1, 8, 32)
GET_CURRENT_USER = "/pixelcheck.v1.AuthService/GetCurrentUser"


def drive(address: str, method: str, seconds: float, concurrency: int, token: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(HERE / "load.py"), "unary", address, method, str(seconds),
                          str(concurrency), token], check=True, capture_output=True, text=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    add_stack_arguments(parser)
    args = parser.parse_args()
    rows, tracing_rows = [], []
    with baseline_server() as (echo_address, _), pixelcheck_stack(args) as stack, OtlpReceiver() as receiver, \
            pixelcheck_stack(args, otlp_endpoint=receiver.endpoint) as traced:
        for concurrency in CONCURRENCY:
            echo = drive(echo_address, "/bench.Baseline/Echo", args.seconds, concurrency, "")
            ours = drive(stack.address, GET_CURRENT_USER, args.seconds, concurrency, stack.token)
            on = drive(traced.address, GET_CURRENT_USER, args.seconds, concurrency, traced.token)
            echo_rate, our_rate = echo["calls"] / echo["wall_s"], ours["calls"] / ours["wall_s"]
            on_rate = on["calls"] / on["wall_s"]
            rows.append([str(concurrency), f"{echo_rate:,.0f}", f"{our_rate:,.0f}", f"{our_rate / echo_rate:.0%}",
                         distribution(echo["latencies_ms"]), distribution(ours["latencies_ms"]),
                         str(ours["failures"])])
            tracing_rows.append([str(concurrency), f"{our_rate:,.0f}", f"{on_rate:,.0f}", f"{on_rate / our_rate:.0%}",
                                 distribution(ours["latencies_ms"]), distribution(on["latencies_ms"]),
                                 str(on["failures"])])
        spans = len(receiver.spans())
    print_table(f"Unary throughput (calls/s; {args.seconds:g} s per cell; PixelCheck = GetCurrentUser, "
                f"authenticated and audited; target >= 60%)",
                ["callers", "echo baseline", "PixelCheck", "ratio", "echo p50/p95/p99 ms",
                 "PixelCheck p50/p95/p99 ms", "failures"], rows)
    print_table(f"Tracing off vs on (same run; on = every RPC's spans exported over OTLP, {spans:,} received)",
                ["callers", "tracing off", "tracing on", "on/off", "off p50/p95/p99 ms", "on p50/p95/p99 ms",
                 "failures"], tracing_rows)

if __name__ == "__main__":
    main()
