"""The grpc.aio server: registers the five services, health and reflection; shuts down gracefully."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pixelcheck.api.health import HealthMonitor
from pixelcheck.api.interceptors import AuthInterceptor, CallContextInterceptor, ErrorInterceptor
from pixelcheck.api.reflection import enable_reflection
from pixelcheck.api.servicers.audit import AuditServicer
from pixelcheck.api.servicers.auth import AuthServicer
from pixelcheck.api.servicers.ingestion import IngestionServicer
from pixelcheck.api.servicers.reports import ReportsServicer
from pixelcheck.api.servicers.results import ResultsServicer
from pixelcheck.api.servicers.webhooks import WebhooksServicer
from pixelcheck.api.supervisor import watch_parent
from pixelcheck.bootstrap import Container, build_container
from pixelcheck.malloc_arenas import cap_malloc_arenas
from pixelcheck.offload import Offloader
from pixelcheck.settings import Settings
from pixelcheck.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    ingestion_pb2,
    ingestion_pb2_grpc,
    reports_pb2,
    reports_pb2_grpc,
    results_pb2,
    results_pb2_grpc,
    webhooks_pb2,
    webhooks_pb2_grpc,
)

log = logging.getLogger("pixelcheck.server")
MIB = 1024 * 1024


@dataclass
class RunningServer:
    server: aio.Server
    port: int
    health: HealthMonitor
    container: Container
    offload: Offloader

    async def stop(self, grace: float | None = None) -> None:
        """Health to NOT_SERVING first, then let in-flight calls finish within the grace period."""
        await self.health.drain()
        await self.server.stop(self.container.settings.grace_seconds if grace is None else grace)
        await self.container.on_server_stopped()
        self.offload.shutdown()


def _options(settings: Settings, *, reuse_port: bool = False) -> list[tuple[str, int]]:
    # Room for a 1 MiB chunk plus framing; keepalive so idle watchers behind NATs stay connected.
    limit = settings.upload_chunk_max_bytes + 64 * 1024
    return [
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", 4 * MIB),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # Only the children of `serve --processes N` share a port; a lone server must not join another's.
        ("grpc.so_reuseport", 1 if reuse_port else 0),
    ] + ([("grpc.max_connection_age_ms", round(settings.grpc_max_connection_age_seconds * 1000))]
         if settings.grpc_max_connection_age_seconds else [])


async def start_server(container: Container, address: str | None = None, *,
                       reuse_port: bool = False) -> RunningServer:
    """Build, register and start the server on address (default: settings.grpc_address); with reuse_port
    it listens with SO_REUSEPORT beside the other processes of `serve --processes N`."""
    settings = container.settings
    offload = Offloader(settings.grpc_max_workers)
    await container.on_server_starting()
    interceptors: list[aio.ServerInterceptor] = [
        CallContextInterceptor(container.call_observer), ErrorInterceptor(),
        AuthInterceptor(container.access_verifier)]
    if container.tracing is not None:  # outermost: the call's span is current in every other interceptor
        interceptors.insert(0, container.tracing.server_interceptor())
    server = aio.server(interceptors=interceptors, options=_options(settings, reuse_port=reuse_port))
    auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(container, offload), server)
    ingestion_pb2_grpc.add_IngestionServiceServicer_to_server(IngestionServicer(container, offload), server)
    results_pb2_grpc.add_ResultsServiceServicer_to_server(ResultsServicer(container, offload), server)
    reports_pb2_grpc.add_ReportsServiceServicer_to_server(ReportsServicer(container, offload), server)
    audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(container, offload), server)
    webhooks_pb2_grpc.add_WebhooksServiceServicer_to_server(WebhooksServicer(container, offload), server)
    health_monitor = HealthMonitor(container, offload)
    health_pb2_grpc.add_HealthServicer_to_server(health_monitor.servicer, server)
    names = [d.services_by_name[n].full_name for d, n in (
        (auth_pb2.DESCRIPTOR, "AuthService"), (ingestion_pb2.DESCRIPTOR, "IngestionService"),
        (results_pb2.DESCRIPTOR, "ResultsService"), (reports_pb2.DESCRIPTOR, "ReportsService"),
        (audit_pb2.DESCRIPTOR, "AuditService"), (webhooks_pb2.DESCRIPTOR, "WebhooksService"))]
    names.append(health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
    enable_reflection(names, server)

    address = address or settings.grpc_address
    if settings.tls_cert_file:
        credentials = grpc.ssl_server_credentials(
            [(Path(settings.tls_key_file).read_bytes(), Path(settings.tls_cert_file).read_bytes())])
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    # Statuses first: a process that joins a shared port must not answer health before it has probed.
    await health_monitor.start()
    await server.start()
    log.info("PixelCheck gRPC listening on %s (port %d)", address, port)
    return RunningServer(server, port, health_monitor, container, offload)


async def serve(settings: Settings, *, supervised: bool = False) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully. supervised: a child of `serve --processes
    N` (shares the port, and also stops when its parent is gone)."""
    cap_malloc_arenas(settings.malloc_arenas)  # before its threads allocate (see pixelcheck.malloc_arenas)
    container = build_container(settings, role="server")
    running = await start_server(container, reuse_port=supervised)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_watch_parent(stop)) if supervised else None
    await stop.wait()
    if watcher is not None:
        watcher.cancel()
    log.info("shutting down: health NOT_SERVING, %.1fs grace for in-flight calls", settings.grace_seconds)
    await running.stop()
    container.close()


async def _watch_parent(stop: asyncio.Event, interval: float = 1.0) -> None:
    orphaned = watch_parent(stop.set)
    while not orphaned():
        await asyncio.sleep(interval)
