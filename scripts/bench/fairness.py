#!/usr/bin/env python3
"""Fairness under load, one worker, distinct ~1 MP JPEGs:

1. Idle: account B uploads --probes images one after another (upload -> terminal WatchAnalysis event).
2. A alone: account A uploads --backlog images on 4 streams; its throughput until all are analysed.
3. Contended: A uploads --backlog more on 4 streams; as soon as they are accepted (A holds a backlog), B
   uploads --probes images one after another, then asks for --maps region maps of fresh images
   (GetRegionMap from the verdict to READY). A's throughput over its whole backlog is compared with phase 2.
   During phase 3 the idle-time map queue is sampled and Redis memory read before and after.

Targets: B's p95 contended <= 2x its idle p95; A's throughput within 10% of alone; requested map p95 <= 10 s.

    nice -n 5 .venv/bin/python scripts/bench/fairness.py [--backlog 300] [--probes 20] [--maps 5]
        [--database-url URL] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import threading
import time

import grpc
import redis
from grpc import aio
from latency import SIZE, one
from pixelcheck.v1 import auth_pb2, auth_pb2_grpc, ingestion_pb2, ingestion_pb2_grpc, results_pb2, results_pb2_grpc
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from stack import MIB, PASSWORD, add_stack_arguments, percentile, pixelcheck_stack, print_table, synthetic_jpeg

from pixelcheck.analysis.models import Analysis
from pixelcheck.keys import RedisKeys
from pixelcheck.scheduling.fair_queue import FairQueue
from pixelcheck.worker import IDLE_MAP_PRIORITY, broker_lists

Metadata = tuple[tuple[str, str], ...]


async def account(channel: aio.Channel) -> tuple[Metadata, str]:
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    name = f"fair_{secrets.token_hex(4)}"
    user = (await auth.SignUp(auth_pb2.SignUpRequest(username=name, email=f"{name}@example.org", password=PASSWORD,
                                                     display_name=name))).user
    token = (await auth.SignIn(auth_pb2.SignInRequest(login=name, password=PASSWORD))).access_token
    return (("authorization", f"Bearer {token}"),), user.id


async def upload_backlog(channel: aio.Channel, metadata: Metadata, images: list[bytes], streams: int = 4) -> None:
    ingestion = ingestion_pb2_grpc.IngestionServiceStub(channel)
    pending = list(enumerate(images))

    async def stream() -> None:
        while pending:
            i, data = pending.pop()
            messages = [ingestion_pb2.UploadImageRequest(metadata=ingestion_pb2.UploadMetadata(
                filename=f"backlog-{i}.jpg", size_bytes=len(data))),
                *(ingestion_pb2.UploadImageRequest(chunk=data[k:k + MIB]) for k in range(0, len(data), MIB))]
            await ingestion.UploadImage(iter(messages), metadata=metadata)

    await asyncio.gather(*(stream() for _ in range(streams)))


def finished_count(engine: object, owner_id: str) -> int:
    with Session(engine) as session:  # type: ignore[arg-type]
        return int(session.scalar(select(func.count()).select_from(Analysis).where(
            Analysis.owner_id == owner_id, Analysis.state.in_(("SUCCEEDED", "FAILED")))) or 0)


def wait_finished(engine: object, owner_id: str, count: int, timeout: float = 3600) -> float:
    """Seconds until owner_id has count finished analyses (polled every 0.2 s)."""
    started, deadline = time.perf_counter(), time.monotonic() + timeout
    while finished_count(engine, owner_id) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{owner_id}: fewer than {count} analyses finished")
        time.sleep(0.2)
    return time.perf_counter() - started


async def requested_map(channel: aio.Channel, metadata: Metadata, data: bytes, name: str) -> tuple[float, str]:
    """Seconds from the first GetRegionMap after the verdict until the map is READY; and the image id."""
    _, _, final = await one(channel, metadata, data, name)
    assert final == "SUCCEEDED", final
    image_id = (await results_pb2_grpc.ResultsServiceStub(channel).ListResults(
        results_pb2.ListResultsRequest(page_size=1), metadata=metadata)).results[0].image_id
    stub = results_pb2_grpc.ResultsServiceStub(channel)
    started = time.perf_counter()
    while True:
        try:
            await stub.GetRegionMap(results_pb2.GetRegionMapRequest(image_id=image_id), metadata=metadata)
            return time.perf_counter() - started, image_id
        except aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
        await asyncio.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backlog", type=int, default=300)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--maps", type=int, default=5)
    parser.add_argument("--backlog-nice", type=int, default=None,
                        help="PIXELCHECK_WORKER_BACKLOG_NICE of the worker (0: no prompt lane; default: the setting's)")
    add_stack_arguments(parser)
    args = parser.parse_args()
    seeds = iter(range(40_000, 10_000_000))
    alone_images = [synthetic_jpeg(*SIZE, seed=next(seeds)) for _ in range(args.backlog)]
    contended_images = [synthetic_jpeg(*SIZE, seed=next(seeds)) for _ in range(args.backlog)]
    probes = [synthetic_jpeg(*SIZE, seed=next(seeds)) for _ in range(2 * args.probes + args.maps + 3)]
    # The bench's own accounts must not hit the admission limits it is not measuring.
    overrides = {"admission_pending_caps": "USER=100000,PROFESSIONAL=100000,ADMIN=100000,SERVICE=100000",
                 "admission_service_pending_cap": 0,
                 "upload_rate_limits": "USER=0,PROFESSIONAL=0,ADMIN=0,SERVICE=0"}
    if args.backlog_nice is not None:
        overrides["worker_backlog_nice"] = args.backlog_nice
    with pixelcheck_stack(args, workers=1, **overrides) as stack:
        engine = create_engine(stack.settings.resolved_database_url)
        client = redis.Redis.from_url(stack.settings.redis_url)
        fair = FairQueue(client, stack.settings.redis_key_prefix, running_timeout_seconds=120)
        idle_list = broker_lists(RedisKeys(stack.settings.redis_key_prefix))[IDLE_MAP_PRIORITY]

        async def run() -> dict[str, object]:
            out: dict[str, object] = {}
            async with aio.insecure_channel(stack.address) as channel:
                a_meta, a_id = await account(channel)
                b_meta, _ = await account(channel)
                for i, data in enumerate(probes[:3]):  # warm-up
                    await one(channel, b_meta, data, f"warm-{i}.jpg")
                idle = [(await one(channel, b_meta, d, f"idle-{i}.jpg"))[0]
                        for i, d in enumerate(probes[3:3 + args.probes])]
                out["idle"] = idle
                began = time.perf_counter()
                await upload_backlog(channel, a_meta, alone_images)
                await asyncio.to_thread(wait_finished, engine, a_id, args.backlog)
                out["alone_seconds"] = time.perf_counter() - began

                samples: list[int] = []
                stop = threading.Event()

                def sample() -> None:
                    while not stop.is_set():
                        samples.append(int(client.llen(idle_list)))
                        stop.wait(0.5)

                sampler = threading.Thread(target=sample, daemon=True)
                memory_before = int(client.info("memory")["used_memory"])
                began = time.perf_counter()
                await upload_backlog(channel, a_meta, contended_images)
                out["backlog_at_probe"] = fair.waiting()
                sampler.start()
                done_a = asyncio.create_task(asyncio.to_thread(wait_finished, engine, a_id, 2 * args.backlog))
                base = 3 + args.probes
                out["contended"] = [(await one(channel, b_meta, d, f"probe-{i}.jpg"))[0]
                                    for i, d in enumerate(probes[base:base + args.probes])]
                maps = [await requested_map(channel, b_meta, d, f"map-{i}.jpg")
                        for i, d in enumerate(probes[base + args.probes:])]
                out["maps"] = [seconds for seconds, _ in maps]
                out["backlog_after_maps"] = fair.waiting()
                await done_a
                out["contended_seconds"] = time.perf_counter() - began
                stop.set()
                sampler.join()
                out["idle_queue_max"] = max(samples, default=0)
                out["memory"] = (memory_before, int(client.info("memory")["used_memory"]))
                with Session(engine) as session:
                    rows = session.execute(select(Analysis.duration_ms, Analysis.region_map).where(
                        Analysis.image_id.in_([image_id for _, image_id in maps]))).all()
                out["map_cost"] = [float((doc or {}).get("work_ms", 0.0)) / max(1, ms or 1) for ms, doc in rows]
            return out

        out = asyncio.run(run())
        client.close()
        engine.dispose()
    idle, contended = out["idle"], out["contended"]
    alone_rate = args.backlog / out["alone_seconds"]  # type: ignore[operator]
    contended_rate = args.backlog / out["contended_seconds"]  # type: ignore[operator]
    backend = "MariaDB + Redis" if args.database_url else "SQLite + embedded Valkey"
    before, after = out["memory"]  # type: ignore[misc]
    p95_idle, p95_busy = percentile(idle, 95), percentile(contended, 95)  # type: ignore[arg-type]
    print_table(f"Fairness ({backend}, one worker, {SIZE[0]}x{SIZE[1]} JPEGs; A's backlog {args.backlog} uploads, "
                f"{out['backlog_at_probe']} still queued when B began, {out['backlog_after_maps']} after B's maps)",
                ["measure", "value", "target"],
                [["B upload -> verdict p50 / p95, idle service (ms)",
                  f"{percentile(idle, 50):.0f} / {p95_idle:.0f}", ""],  # type: ignore[arg-type]
                 [f"B upload -> verdict p50 / p95, A's backlog queued (ms, {args.probes} uploads)",
                  f"{percentile(contended, 50):.0f} / {p95_busy:.0f}", ""],  # type: ignore[arg-type]
                 ["B p95 contended / idle", f"{p95_busy / p95_idle:.2f}x", "<= 2x"],
                 ["A throughput alone / with B (analyses/s)", f"{alone_rate:.2f} / {contended_rate:.2f}", ""],
                 ["A throughput with B / alone", f"{contended_rate / alone_rate:.0%}", ">= 90%"],
                 [f"requested region map, verdict -> READY p50 / p95 (s, {args.maps} maps)",
                  f"{percentile(out['maps'], 50):.2f} / {percentile(out['maps'], 95):.2f}", "p95 <= 10 s"],  # type: ignore[arg-type]
                 ["region map worker time / its verdict's (median)",
                  f"{sorted(out['map_cost'])[len(out['map_cost']) // 2]:.2f}x" if out["map_cost"] else "-",  # type: ignore[arg-type, index]
                  "<= 1.5x"],
                 ["idle-time map tasks queued, max sampled", str(out["idle_queue_max"]), "bounded (<= 1 per worker)"],
                 ["Redis used_memory before / after phase 3 (MiB)", f"{before / MIB:.1f} / {after / MIB:.1f}", "flat"]])


if __name__ == "__main__":
    main()
