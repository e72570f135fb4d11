"""grpc.health.v1 statuses, kept current by probing the database, the broker and (when it is a separate
service such as S3) the blob store in the background."""

from __future__ import annotations

import asyncio
import logging

from grpc_health.v1 import health, health_pb2
from sqlalchemy import text

from pixelcheck.bootstrap import Container
from pixelcheck.offload import Offloader

log = logging.getLogger("pixelcheck.health")

SERVICES = tuple(f"pixelcheck.v1.{name}Service" for name in ("Auth", "Ingestion", "Results", "Reports", "Audit",
                                                                 "Webhooks"))
# The services that cannot work without image and report bytes: NOT_SERVING (with "") while the blob store is down.
NEEDS_BLOBS = frozenset({"", "pixelcheck.v1.IngestionService", "pixelcheck.v1.ResultsService",
                         "pixelcheck.v1.ReportsService"})
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthMonitor:
    """Owns the health servicer: NOT_SERVING while the database (or, for ingestion, the broker; for the
    services that read or write bytes, a separate blob store) is down."""

    def __init__(self, container: Container, offload: Offloader) -> None:
        self.servicer = health.aio.HealthServicer()
        self._c = container
        self._offload = offload
        self._task: asyncio.Task[None] | None = None
        self._draining = False
        self.database_ok = False
        self.broker_ok = False
        self.blobs_ok = False

    def _database_up(self) -> bool:
        try:
            with self._c.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def _broker_up(self) -> bool:
        try:
            return bool(self._c.redis.ping())
        except Exception:
            return False

    def _blobs_up(self) -> bool:
        # Stores kept in the database or on a local disk have no probe of their own; S3 does.
        reachable = getattr(self._c.blobs, "reachable", None)
        return True if reachable is None else bool(reachable())

    async def probe(self) -> None:
        """Probe every dependency once and publish the statuses."""
        self.database_ok, self.broker_ok, self.blobs_ok = await asyncio.gather(
            self._offload.run(self._database_up), self._offload.run(self._broker_up),
            self._offload.run(self._blobs_up))
        await self._publish()

    async def _publish(self) -> None:
        up = self.database_ok and not self._draining
        for name in ("", *SERVICES):
            ok = up and (self.broker_ok or name != "pixelcheck.v1.IngestionService") and (
                self.blobs_ok or name not in NEEDS_BLOBS)
            await self.servicer.set(name, SERVING if ok else NOT_SERVING)

    async def start(self) -> None:
        await self.probe()
        self._task = asyncio.create_task(self._loop(), name="health-monitor")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._c.settings.health_check_interval_seconds)
            try:
                await self.probe()
            except Exception:
                log.exception("health probe failed")

    async def drain(self) -> None:
        """Flip every service to NOT_SERVING for good (shutdown has begun)."""
        self._draining = True
        if self._task is not None:
            self._task.cancel()
        await self._publish()
        await self.servicer.enter_graceful_shutdown()
