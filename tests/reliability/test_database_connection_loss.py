"""A read whose connection is lost as it goes back to the pool: SQLAlchemy rolls the connection back, then resets
a readonly session's isolation level (one more round trip), and lets the driver's own error from that reset
through, unwrapped. It must still read as "the database is unreachable" (UNAVAILABLE with a retry delay), not
as a bug (INTERNAL): a soak's database outage once made an upload answer INTERNAL this way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.db import database_unreachable, make_engine, make_session_factory, unit_of_work
from pixelcheck.errors import Unavailable
from tests.conftest import TEST_DATABASE_URL, ScratchDatabases
from tests.reliability.conftest import BACKEND
from tests.reliability.proxy import TcpProxy

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.skipif(BACKEND != "mysql", reason="the check-in round trip that meets the lost connection is MySQL's "
                       "(set PIXELCHECK_TEST_DATABASE_URL to a MariaDB server to run it)"),
]


@pytest.fixture
def proxied_reads(tmp_path: Path) -> Iterator[tuple[sessionmaker[Session], TcpProxy]]:
    """Readonly sessions on a private database reached through a proxy the test can cut."""
    databases = ScratchDatabases(TEST_DATABASE_URL, tmp_path)
    direct = make_url(databases.create())
    proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 3306).start()
    engine = make_engine(direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    try:
        yield make_session_factory(engine, readonly=True), proxy
    finally:
        engine.dispose()
        proxy.close()
        databases.drop_all()


def _lost_at_check_in(session: Session, proxy: TcpProxy) -> None:
    """The database goes away between the rollback and the isolation-level reset of this session's connection
    (the driver's autocommit switch, the reset's round trip, cuts the proxy first)."""
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    switch = raw.autocommit

    def cut_then_switch(value: bool) -> None:
        proxy.cut()
        switch(value)

    raw.autocommit = cut_then_switch


def test_a_read_whose_connection_is_lost_as_it_goes_back_to_the_pool_raises_an_error_that_reads_as_unreachable(
        proxied_reads: tuple[sessionmaker[Session], TcpProxy]) -> None:
    reads, proxy = proxied_reads
    session = reads()
    assert session.execute(text("SELECT 1")).scalar() == 1
    _lost_at_check_in(session, proxy)
    with pytest.raises(pymysql.err.OperationalError) as lost:  # the driver's own: SQLAlchemy does not wrap it
        session.close()
    assert database_unreachable(lost.value)


def test_a_unit_of_work_whose_connection_is_lost_as_it_goes_back_to_the_pool_is_unavailable(
        proxied_reads: tuple[sessionmaker[Session], TcpProxy]) -> None:
    reads, proxy = proxied_reads
    with pytest.raises(Unavailable) as down, unit_of_work(reads) as session:
        assert session.execute(text("SELECT 1")).scalar() == 1
        _lost_at_check_in(session, proxy)
    assert down.value.reason == "DATABASE_UNAVAILABLE"
