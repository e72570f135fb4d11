#!/usr/bin/env python3
"""Worker throughput: analyses per second of one worker process (solo pool) on 1 MP and 12 MP JPEGs, from the
first claim to the last verdict in the database. Baseline: the bare detector's analyze() on the same images.

    .venv/bin/python scripts/bench/worker_throughput.py [--count-1mp 40] [--count-12mp 8] [--database-url URL]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import grpc
from pixelcheck.v1 import ingestion_pb2, ingestion_pb2_grpc
from sqlalchemy import create_engine, func, select
from stack import MIB, Stack, add_stack_arguments, pixelcheck_stack, print_table, synthetic_jpeg

from pixelcheck.analysis.detector import DEFAULT_MODEL_DIR, load_detector
from pixelcheck.analysis.models import Analysis

SIZES = {"1 MP": (1152, 864), "12 MP": (4032, 3024)}


def upload_all(stack: Stack, images: list[bytes]) -> None:
    with grpc.insecure_channel(stack.address) as channel:
        stub = ingestion_pb2_grpc.IngestionServiceStub(channel)
        for i, data in enumerate(images):
            messages = [ingestion_pb2.UploadImageRequest(metadata=ingestion_pb2.UploadMetadata(
                filename=f"w{i}.jpg", size_bytes=len(data))), *(ingestion_pb2.UploadImageRequest(
                    chunk=data[j:j + MIB]) for j in range(0, len(data), MIB))]
            stub.UploadImage(iter(messages), metadata=stack.metadata, timeout=120)


def worker_rate(stack: Stack, count: int) -> tuple[float, int]:
    """Analyses/s from the first start to the last finish, and how many did not succeed."""
    engine = create_engine(stack.settings.resolved_database_url)
    try:
        stack.start_worker()
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                finished = connection.scalar(select(func.count()).select_from(Analysis).where(
                    Analysis.state.in_(("SUCCEEDED", "FAILED"))))
            if finished >= count:
                break
            time.sleep(0.5)
        with engine.connect() as connection:
            first, last = connection.execute(select(func.min(Analysis.start_time),
                                                    func.max(Analysis.finish_time))).one()
            failed = connection.scalar(select(func.count()).select_from(Analysis)
                                       .where(Analysis.state != "SUCCEEDED"))
    finally:
        engine.dispose()
    return count / (last - first).total_seconds(), int(failed or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count-1mp", type=int, default=40)
    parser.add_argument("--count-12mp", type=int, default=8)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    add_stack_arguments(parser)
    args = parser.parse_args()
    detector = load_detector(args.model)
    rows = []
    for label, count in (("1 MP", args.count_1mp), ("12 MP", args.count_12mp)):
        images = [synthetic_jpeg(*SIZES[label], seed=30_000 + i) for i in range(count)]
        detector.analyze(images[0])
        began = time.perf_counter()
        for data in images:
            detector.analyze(data)
        bare = count / (time.perf_counter() - began)
        with pixelcheck_stack(args) as stack:
            upload_all(stack, images)
            if stack.server is not None:
                stack.server.stop()  # the worker alone on the cores while it is timed
            rate, failed = worker_rate(stack, count)
        rows.append([label, str(count), f"{sum(map(len, images)) / count / MIB:.2f}", f"{bare:.2f}", f"{rate:.2f}",
                     f"{rate / bare:.0%}", f"{1000 / rate - 1000 / bare:.1f}", str(failed)])
    print_table("Worker throughput (analyses/s of one worker process, solo pool; baseline: bare detector.analyze "
                "in one process on the same images)",
                ["image", "count", "MiB each", "bare detector/s", "worker/s", "ratio", "overhead ms/analysis",
                 "not succeeded"], rows)


if __name__ == "__main__":
    main()
