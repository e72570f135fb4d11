#!/usr/bin/env python3
"""The load generator, run as a process of its own so that it never shares a core's event loop with a server.

    python scripts/bench/load.py unary ADDRESS METHOD SECONDS CONCURRENCY TOKEN [CONNECTIONS]
    python scripts/bench/load.py upload ADDRESS METHOD COUNT CONCURRENCY PNG_FILE TOKEN [CONNECTIONS]

CONNECTIONS (default 1) spreads the callers over that many TCP connections, round robin: the kernel hands
each connection to one process of a `serve --processes N` server, so one connection would reach only one.

Requests and responses travel as raw bytes (no client-side protobuf work), identically for the baseline and
PixelCheck. Prints one JSON object: completed calls, their latencies (ms), wall time, and failures.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import struct
import sys
import time
import zlib
from pathlib import Path

from grpc import aio
from pixelcheck.v1 import auth_pb2, ingestion_pb2

MIB = 1024 * 1024
OPTIONS = [("grpc.max_send_message_length", 4 * MIB)]


def _channels(address: str, connections: int) -> list[aio.Channel]:
    # A local subchannel pool per channel: otherwise channels with the same arguments share one connection.
    options = [*OPTIONS, ("grpc.use_local_subchannel_pool", 1)] if connections > 1 else OPTIONS
    return [aio.insecure_channel(address, options=options) for _ in range(connections)]


def _metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


async def unary(address: str, method: str, seconds: float, concurrency: int, token: str,
                connections: int = 1) -> dict[str, object]:
    request = auth_pb2.GetCurrentUserRequest().SerializeToString()
    latencies: list[float] = []
    failures = 0
    channels = _channels(address, connections)
    try:
        calls = [channel.unary_unary(method) for channel in channels]
        metadata = _metadata(token)
        for call in calls:
            await call(request, metadata=metadata)  # warm-up: connection set-up
        deadline = time.perf_counter() + seconds

        async def caller(call: aio.UnaryUnaryMultiCallable) -> None:
            nonlocal failures
            while (started := time.perf_counter()) < deadline:
                try:
                    await call(request, metadata=metadata)
                except aio.AioRpcError:
                    failures += 1
                    continue
                latencies.append((time.perf_counter() - started) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(caller(calls[i % len(calls)]) for i in range(concurrency)))
        wall = time.perf_counter() - began
    finally:
        for channel in channels:
            await channel.close()
    return {"calls": len(latencies), "latencies_ms": latencies, "wall_s": wall, "failures": failures}


def png_variant(png: bytes, label: str) -> bytes:
    """The same PNG with a tEXt chunk after IHDR: identical pixels, distinct bytes (no dedupe)."""
    body = b"tEXt" + b"Comment\x00" + label.encode()
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    ihdr_end = 8 + 8 + 13 + 4
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def upload_messages(data: bytes, label: str) -> list[bytes]:
    meta = ingestion_pb2.UploadImageRequest(metadata=ingestion_pb2.UploadMetadata(
        filename=f"{label}.png", size_bytes=len(data), content_type="image/png"))
    return [meta.SerializeToString(), *(ingestion_pb2.UploadImageRequest(chunk=data[i:i + MIB]).SerializeToString()
                                        for i in range(0, len(data), MIB))]


async def upload(address: str, method: str, count: int, concurrency: int, png_file: str,
                 token: str, connections: int = 1) -> dict[str, object]:
    base = Path(png_file).read_bytes()
    run = secrets.token_hex(4)
    streams = [upload_messages(png_variant(base, f"{run}-{i}"), f"{run}-{i}") for i in range(count)]
    latencies: list[float] = []
    failures: list[str] = []
    queue = list(range(count))
    channels = _channels(address, connections)
    try:
        calls = [channel.stream_unary(method) for channel in channels]
        metadata = _metadata(token)

        async def uploader(call: aio.StreamUnaryMultiCallable) -> None:
            while queue:
                messages = streams[queue.pop()]
                started = time.perf_counter()
                try:
                    await call(iter(messages), metadata=metadata, timeout=120)
                except aio.AioRpcError as error:
                    failures.append(str(error.code()))
                    continue
                latencies.append((time.perf_counter() - started) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(uploader(calls[i % len(calls)]) for i in range(concurrency)))
        wall = time.perf_counter() - began
    finally:
        for channel in channels:
            await channel.close()
    return {"calls": len(latencies), "latencies_ms": latencies, "wall_s": wall, "failures": failures,
            "bytes": len(base)}


def main() -> None:
    mode, address, method, *rest = sys.argv[1:]
    if mode == "unary":
        result = asyncio.run(unary(address, method, float(rest[0]), int(rest[1]), rest[2], *map(int, rest[3:4])))
    else:
        result = asyncio.run(upload(address, method, int(rest[0]), int(rest[1]), rest[2], rest[3],
                                    *map(int, rest[4:5])))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
