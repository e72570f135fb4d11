#!/usr/bin/env python3
"""Watchers: 1,000 concurrent WatchAnalysis streams on one server process: its memory per stream, and the
delivery latency of progress events from the moment a worker would publish them to their arrival at every
watcher. Baseline: the same publications read by one bare Redis pub/sub subscriber in the same process.

    .venv/bin/python scripts/bench/watchers.py [--watchers 1000] [--images 10] [--database-url URL] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import redis
import redis.asyncio as aioredis
from grpc import aio
from pixelcheck.v1 import common_pb2, ingestion_pb2, ingestion_pb2_grpc, results_pb2, results_pb2_grpc
from stack import Stack, add_stack_arguments, distribution, pixelcheck_stack, print_table, rss_kib, synthetic_jpeg

from pixelcheck.analysis.progress import STAGE_PROGRESS, ProgressEvent, ProgressPublisher
from pixelcheck.db import utcnow
from pixelcheck.keys import RedisKeys

STAGES = ("DECODING", "PROVENANCE", "PIXEL_MODEL", "FUSION", "SAVING")
CHANNELS = 10  # HTTP/2 connections the watchers are spread over


async def run(stack: Stack, watchers: int, image_count: int) -> dict[str, object]:
    assert stack.server is not None
    channels = [aio.insecure_channel(stack.address) for _ in range(CHANNELS)]
    ingestion = ingestion_pb2_grpc.IngestionServiceStub(channels[0])
    ids = []
    for i in range(image_count):
        data = synthetic_jpeg(64, 48, seed=40_000 + i)
        response = await ingestion.UploadImage(iter([
            ingestion_pb2.UploadImageRequest(metadata=ingestion_pb2.UploadMetadata(filename=f"{i}.jpg",
                                                                                 size_bytes=len(data))),
            ingestion_pb2.UploadImageRequest(chunk=data)]), metadata=stack.metadata)
        ids.append(response.image.id)
    published: dict[tuple[str, str], float] = {}
    arrivals: list[float] = []
    snapshots = 0
    ready = asyncio.Event()

    async def watcher(n: int) -> None:
        nonlocal snapshots
        stub = results_pb2_grpc.ResultsServiceStub(channels[n % CHANNELS])
        call = stub.WatchAnalysis(results_pb2.WatchAnalysisRequest(image_id=ids[n % len(ids)]),
                                  metadata=stack.metadata)
        async for response in call:
            event = response.event
            stage = common_pb2.AnalysisStage.Name(event.stage).removeprefix("ANALYSIS_STAGE_")
            sent = published.get((event.image_id, stage))
            if sent is None:
                snapshots += 1
                if snapshots == watchers:
                    ready.set()
                continue
            arrivals.append((time.perf_counter() - sent) * 1000)

    baseline: list[float] = []
    keys = RedisKeys(stack.settings.redis_key_prefix)
    bare = aioredis.Redis.from_url(stack.settings.redis_url)
    pubsub = bare.pubsub(ignore_subscribe_messages=True)
    await pubsub.psubscribe(keys.analysis_channel_pattern)

    async def bare_subscriber() -> None:
        async for message in pubsub.listen():
            event = ProgressEvent.from_json(message["data"])
            baseline.append((time.perf_counter() - published[(event.image_id, event.stage)]) * 1000)

    idle_kib = rss_kib(stack.server.pid)
    tasks = [asyncio.create_task(watcher(n)) for n in range(watchers)]
    listener = asyncio.create_task(bare_subscriber())
    await asyncio.wait_for(ready.wait(), timeout=120)
    await asyncio.sleep(1)
    open_kib = rss_kib(stack.server.pid)
    publisher = ProgressPublisher(redis.Redis.from_url(stack.settings.redis_url), keys)
    for stage in STAGES:
        for image_id in ids:
            published[(image_id, stage)] = time.perf_counter()
            publisher.publish(ProgressEvent(image_id=image_id, state="RUNNING", stage=stage,
                                            progress=STAGE_PROGRESS[stage], message="", event_time=utcnow().isoformat(),
                                            attempt=1))
        await asyncio.sleep(0.5)  # let every watcher receive the round
    await asyncio.sleep(1)
    peak_kib = rss_kib(stack.server.pid, "VmHWM")
    for task in (*tasks, listener):
        task.cancel()
    await asyncio.gather(*tasks, listener, return_exceptions=True)
    for channel in channels:
        await channel.close()
    await pubsub.aclose()
    await bare.aclose()
    return {"idle": idle_kib, "open": open_kib, "peak": peak_kib, "arrivals": arrivals, "baseline": baseline,
            "expected": watchers * len(STAGES)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--images", type=int, default=10)
    add_stack_arguments(parser)
    args = parser.parse_args()
    with pixelcheck_stack(args) as stack:
        result = asyncio.run(run(stack, args.watchers, args.images))
    arrivals, baseline = result["arrivals"], result["baseline"]
    assert isinstance(arrivals, list) and isinstance(baseline, list)
    idle, opened, peak = (int(result[k]) / 1024 for k in ("idle", "open", "peak"))  # type: ignore[call-overload]
    print_table(f"Watchers ({args.watchers} concurrent WatchAnalysis streams on one server over {CHANNELS} "
                f"connections, {args.images} images x {len(STAGES)} stage events)",
                ["measure", "value"],
                [["events delivered / expected", f"{len(arrivals)} / {result['expected']}"],
                 ["delivery latency p50/p95/p99 ms (PixelCheck)", distribution(arrivals)],
                 ["delivery latency p50/p95/p99 ms (bare Redis subscriber)", distribution(baseline)],
                 ["server RSS idle -> streams open -> peak MiB", f"{idle:.0f} -> {opened:.0f} -> {peak:.0f}"],
                 ["memory per stream KiB", f"{(opened - idle) * 1024 / args.watchers:.1f}"]])


if __name__ == "__main__":
    main()
