"""Fixtures shared by the integration tests: a migrated database behind a session factory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.db import make_engine, make_session_factory, upgrade


@pytest.fixture(scope="module")
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on the run's database, migrated to the newest schema; one engine per test module
    (modules that need a database of their own define `sessions` themselves)."""
    upgrade(database_url)
    engine = make_engine(database_url, pool_size=2)
    yield make_session_factory(engine)
    engine.dispose()
