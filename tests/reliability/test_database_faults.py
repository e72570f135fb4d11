"""The database unreachable: RPCs answer UNAVAILABLE with RetryInfo, health turns NOT_SERVING, and the
server recovers by itself once the database is back. Each run uses a database of its own: on SQLite a
private file whose folder disappears, on MariaDB a private database behind a proxy the test cuts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pixelcheck.v1 import auth_pb2, ingestion_pb2, ingestion_pb2_grpc, results_pb2, results_pb2_grpc
from sqlalchemy import make_url

from pixelcheck.db import upgrade
from pixelcheck.settings import Settings
from tests import images
from tests.conftest import TEST_DATABASE_URL, ScratchDatabases
from tests.e2e.conftest import LiveServer, start_live_server
from tests.e2e.flows import fails, new_user
from tests.e2e.uploads import upload
from tests.reliability.conftest import BACKEND
from tests.reliability.proxy import TcpProxy

pytestmark = [pytest.mark.reliability, pytest.mark.asyncio(loop_scope="session")]

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class DatabaseOutage:
    """A private, migrated database the test can make unreachable (cut) and bring back (restore)."""

    url: str

    def cut(self, server: LiveServer) -> None:
        raise NotImplementedError

    def restore(self) -> None:
        raise NotImplementedError


class SqliteFolderOutage(DatabaseOutage):
    """The SQLite file's folder is moved away. Open SQLite connections keep working on the moved file, so
    the server's pool is emptied as well: from then on it must open the file, and cannot."""

    def __init__(self, folder: Path) -> None:
        self._home, self._away = folder / "db", folder / "db-away"
        self.url = f"sqlite:///{self._home / 'pixelcheck.db'}"
        upgrade(self.url)

    def cut(self, server: LiveServer) -> None:
        self._home.rename(self._away)
        server.container.engine.dispose()

    def restore(self) -> None:
        self._away.rename(self._home)


class MariadbProxyOutage(DatabaseOutage):
    """A private MariaDB database reached through a TCP proxy; cutting the proxy drops every connection."""

    def __init__(self, databases: ScratchDatabases) -> None:
        direct = make_url(databases.create())
        upgrade(direct.render_as_string(hide_password=False))
        self.proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 3306).start()
        self.url = direct.set(host="127.0.0.1", port=self.proxy.port).render_as_string(hide_password=False)

    def cut(self, server: LiveServer) -> None:
        self.proxy.cut()

    def restore(self) -> None:
        self.proxy.restore()


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[DatabaseOutage]:
    if BACKEND == "sqlite":
        yield SqliteFolderOutage(tmp_path)
        return
    databases = ScratchDatabases(TEST_DATABASE_URL, tmp_path)
    mariadb = MariadbProxyOutage(databases)
    try:
        yield mariadb
    finally:
        mariadb.proxy.close()
        databases.drop_all()


async def _wait_for_health(server: LiveServer, wanted: int, timeout: float) -> float:
    """Seconds until overall health reads wanted; fails the test after timeout."""
    health = health_pb2_grpc.HealthStub(server.channel)
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
        if reply.status == wanted:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"health never became {health_pb2.HealthCheckResponse.ServingStatus.Name(wanted)}")


async def test_unreachable_database_answers_unavailable_with_retry_info_and_recovers_by_itself(
        reliability_settings: Settings, outage: DatabaseOutage) -> None:
    server = await start_live_server(reliability_settings.with_overrides(database_url=outage.url))
    try:
        user = await new_user(server.auth)
        image_id = (await upload(server.channel, user.metadata, images.jpeg(seed=8100))).image.id
        ingestion = ingestion_pb2_grpc.IngestionServiceStub(server.channel)
        results = results_pb2_grpc.ResultsServiceStub(server.channel)
        md = user.metadata
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "GetCurrentUser": lambda: server.auth.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), metadata=md),
            "GetImage": lambda: ingestion.GetImage(ingestion_pb2.GetImageRequest(image_id=image_id), metadata=md),
            "ListImages": lambda: ingestion.ListImages(ingestion_pb2.ListImagesRequest(), metadata=md),
            "GetResult": lambda: results.GetResult(results_pb2.GetResultRequest(image_id=image_id), metadata=md),
            "ListResults": lambda: results.ListResults(results_pb2.ListResultsRequest(), metadata=md),
            "UploadImage": lambda: upload(server.channel, md, images.jpeg(seed=8101)),
        }

        await asyncio.to_thread(outage.cut, server)
        await _wait_for_health(server, NOT_SERVING, timeout=10)
        for name, call in calls.items():
            failure = await fails(call())
            assert (name, failure.code) == (name, grpc.StatusCode.UNAVAILABLE)
            assert failure.retry_delay_seconds is not None and failure.retry_delay_seconds > 0, name

        await asyncio.to_thread(outage.restore)
        await _wait_for_health(server, SERVING, timeout=20)
        for call in calls.values():
            await call()  # every RPC works again, without a restart
    finally:
        await server.stop()
