#!/usr/bin/env python3
"""The physical baseline: a bare grpc.aio server on the same stack (no interceptors, no database), with an
echo unary method, a client-streaming sink and the standard health service (so start-up is detected alike).

    python scripts/bench/baseline.py PORT
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2_grpc

ECHO = "/bench.Baseline/Echo"
SINK = "/bench.Baseline/Sink"


async def echo(request: bytes, context: aio.ServicerContext) -> bytes:
    return request


async def sink(requests: AsyncIterator[bytes], context: aio.ServicerContext) -> bytes:
    received = 0
    async for chunk in requests:
        received += len(chunk)
    return str(received).encode()


async def serve(port: int) -> None:
    server = aio.server(options=[("grpc.max_receive_message_length", 2 * 1024 * 1024)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Baseline", {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Sink": grpc.stream_unary_rpc_method_handler(sink),
    }),))
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
