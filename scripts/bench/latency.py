#!/usr/bin/env python3
"""Upload -> verdict latency: distinct ~1 MP JPEGs uploaded one after another with one worker, timed from the
first upload message to the terminal WatchAnalysis event, broken down by stage as the client saw each event
arrive. Baseline: the bare detector's analyze() on the same images in this process. Target: p95 <= 250 ms.

    .venv/bin/python scripts/bench/latency.py [--uploads 200] [--database-url URL] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from pathlib import Path

from grpc import aio
from pixelcheck.v1 import common_pb2, ingestion_pb2, ingestion_pb2_grpc, results_pb2, results_pb2_grpc
from stack import MIB, add_stack_arguments, distribution, percentile, pixelcheck_stack, print_table, synthetic_jpeg

from pixelcheck.analysis.detector import DEFAULT_MODEL_DIR, load_detector

SIZE = (1152, 864)
STAGES = ("DECODING", "PROVENANCE", "PIXEL_MODEL", "FUSION", "SAVING")


def _stage(event: results_pb2.AnalysisEvent) -> str:
    return common_pb2.AnalysisStage.Name(event.stage).removeprefix("ANALYSIS_STAGE_")


async def one(channel: aio.Channel, metadata: tuple[tuple[str, str], ...], data: bytes, name: str
              ) -> tuple[float, dict[str, float], str]:
    """Total ms, ms per segment (upload, queued, each stage), and the final state."""
    ingestion = ingestion_pb2_grpc.IngestionServiceStub(channel)
    results = results_pb2_grpc.ResultsServiceStub(channel)
    messages = [ingestion_pb2.UploadImageRequest(metadata=ingestion_pb2.UploadMetadata(
        filename=name, size_bytes=len(data))), *(ingestion_pb2.UploadImageRequest(chunk=data[i:i + MIB])
                                                for i in range(0, len(data), MIB))]
    started = time.perf_counter()
    image = (await ingestion.UploadImage(iter(messages), metadata=metadata)).image
    marks: list[tuple[str, float]] = [("upload", started), ("queued", time.perf_counter())]
    final = ""
    async for response in results.WatchAnalysis(results_pb2.WatchAnalysisRequest(image_id=image.id),
                                                metadata=metadata, timeout=120):
        event = response.event
        now = time.perf_counter()
        state = common_pb2.AnalysisState.Name(event.state).removeprefix("ANALYSIS_STATE_")
        if state in ("SUCCEEDED", "FAILED"):
            final = state
            marks.append(("end", now))
            break
        stage = _stage(event)
        if stage in STAGES and stage != marks[-1][0]:
            marks.append((stage, now))
    segments = {name: (later - at) * 1000 for (name, at), (_, later) in zip(marks, marks[1:], strict=False)}
    return (marks[-1][1] - started) * 1000, segments, final


async def measure(address: str, metadata: tuple[tuple[str, str], ...], images: list[bytes]
                  ) -> tuple[list[float], dict[str, list[float]], int]:
    totals: list[float] = []
    segments: dict[str, list[float]] = defaultdict(list)
    failed = 0
    async with aio.insecure_channel(address) as channel:
        for i, data in enumerate(images):
            total, parts, final = await one(channel, metadata, data, f"latency-{i}.jpg")
            if final != "SUCCEEDED":
                failed += 1
                continue
            totals.append(total)
            for name in ("upload", "queued", *STAGES):
                segments[name].append(parts.get(name, 0.0))
    return totals, segments, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    add_stack_arguments(parser)
    args = parser.parse_args()
    warm_up = 3  # the worker's first inferences, not measured
    images = [synthetic_jpeg(*SIZE, seed=20_000 + i) for i in range(args.uploads + warm_up)]
    detector = load_detector(args.model)
    detector.analyze(images[0])  # warm-up
    bare: list[float] = []
    for data in images[: min(50, len(images))]:
        began = time.perf_counter()
        detector.analyze(data)
        bare.append((time.perf_counter() - began) * 1000)
    with pixelcheck_stack(args, workers=1) as stack:
        asyncio.run(measure(stack.address, stack.metadata, images[:warm_up]))
        totals, segments, failed = asyncio.run(measure(stack.address, stack.metadata, images[warm_up:]))
    backend = "MariaDB" if args.database_url else "SQLite"
    print_table(f"Upload -> verdict latency ({len(totals)} uploads of distinct {SIZE[0]}x{SIZE[1]} JPEGs "
                f"(~{sum(map(len, images)) / len(images) / 1024:.0f} KiB), one worker, {backend}; "
                f"failed or lost: {failed}; target p95 <= 250 ms)",
                ["measure", "p50 / p95 / p99 ms", "mean ms"],
                [["bare detector.analyze (baseline)", distribution(bare), f"{sum(bare) / len(bare):.1f}"],
                 ["PixelCheck upload -> terminal event", distribution(totals), f"{sum(totals) / len(totals):.1f}"],
                 ["ratio PixelCheck / baseline (p50, p95)", f"{percentile(totals, 50) / percentile(bare, 50):.2f}x, "
                  f"{percentile(totals, 95) / percentile(bare, 95):.2f}x", ""],
                 *[[f"  stage {name}", distribution(values), f"{sum(values) / len(values):.1f}"]
                   for name, values in segments.items()]])


if __name__ == "__main__":
    main()
