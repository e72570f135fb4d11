"""End-to-end fixtures: a migrated database and the real gRPC server, in-process on a free port.

`live_server` is module-scoped and built from `server_settings`; a test module that needs other settings
(a short lockout window, real argon2 costs) overrides `server_settings` in the module and gets a server
of its own. `start_live_server` (tests/e2e/servers.py, re-exported here) starts further servers on the same
database and Redis (several processes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from pixelcheck.db import upgrade
from pixelcheck.settings import Settings
from tests.e2e.servers import LiveServer, start_live_server
from tests.processes import WorkerProcess


@pytest.fixture(scope="session")
def migrated_database_url(database_url: str) -> str:
    """This run's database with every migration applied (roles seeded)."""
    upgrade(database_url)
    return database_url


@pytest.fixture(scope="module")
def server_settings(base_settings: Settings, migrated_database_url: str) -> Settings:
    """Settings of the module's live server; override in a test module to change them.

    Every test client connects from 127.0.0.1, so the per-address sign-in limit would answer the module's
    deliberate failures with RESOURCE_EXHAUSTED after a while: the limits are raised here and tested in
    test_signin_lockout.py. Revocations are re-read often so that tests of them need not wait.
    """
    return base_settings.with_overrides(signin_max_failures=10_000, signin_address_max_failures=10_000,
                                        revocation_refresh_seconds=0.2)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def live_server(server_settings: Settings) -> AsyncIterator[LiveServer]:
    """The real PixelCheck server for this test module."""
    server = await start_live_server(server_settings)
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(scope="module")
def worker(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """A real Celery worker process on the live server's database and Redis, for this test module."""
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    process = WorkerProcess(live_server.settings, log_path).start()
    try:
        yield process
    finally:
        process.stop()
