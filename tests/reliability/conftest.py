"""Reliability fixtures: a migrated database, settings with short stale timeouts, and a launcher that
stops every child process a scenario started, whatever happened in it.

Each test module gets a Redis key prefix of its own so that its workers never take another module's tasks.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from pixelcheck.db import upgrade
from pixelcheck.settings import Settings
from tests.conftest import TEST_DATABASE_URL

BACKEND = "mysql" if TEST_DATABASE_URL else "sqlite"


class Stoppable(Protocol):
    def stop(self) -> None: ...


ProcessT = TypeVar("ProcessT", bound=Stoppable)


@pytest.fixture(scope="session")
def reliability_database_url(database_url: str) -> str:
    """This run's database with every migration applied."""
    upgrade(database_url)
    return database_url


@pytest.fixture(scope="module")
def reliability_settings(base_settings: Settings, reliability_database_url: str) -> Settings:
    """Short stale period (the reconciler re-finds lost analyses after 3 s), quick health probes, a short
    grace period, and a Redis namespace of this module's own."""
    return base_settings.with_overrides(
        database_url=reliability_database_url,
        redis_key_prefix=f"{base_settings.redis_key_prefix}-rel-{secrets.token_hex(3)}",
        analysis_stale_seconds=3,
        health_check_interval_seconds=0.5,
        grace_seconds=3.0,
        # Every client is 127.0.0.1: only the sign-in throttling tests lower these.
        signin_max_failures=10_000, signin_address_max_failures=10_000,
    )


class Launcher:
    """Remembers started processes and stops them (in reverse order) at the end of the test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._started: list[Stoppable] = []

    def log(self, name: str) -> Path:
        """A log file path for a child process of this test."""
        return self.folder / f"{name}.log"

    def keep(self, process: ProcessT) -> ProcessT:
        self._started.append(process)
        return process

    def stop_all(self) -> None:
        while self._started:
            self._started.pop().stop()


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    """Starts nothing itself; stops whatever the test registered with keep()."""
    launched = Launcher(tmp_path)
    try:
        yield launched
    finally:
        launched.stop_all()
