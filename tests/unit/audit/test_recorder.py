"""AuditRecorder: buffered, batched, never failing its callers, bounded when the database is down."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.api.calls import CallInfo
from pixelcheck.audit import recorder as recorder_module
from pixelcheck.audit.chain import verify_stored
from pixelcheck.audit.models import AuditEvent
from pixelcheck.audit.recorder import AuditRecorder
from pixelcheck.db import make_engine, make_session_factory, upgrade
from pixelcheck.iam.principal import Principal
from pixelcheck.settings import Settings


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('audit') / 'audit.db'}"
    upgrade(url)
    return url


@pytest.fixture
def sessions(sqlite_url: str) -> sessionmaker[Session]:
    engine = make_engine(sqlite_url, pool_size=2)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env(environ={}, env_file="/nonexistent").with_overrides(
        audit_batch_size=50, audit_flush_interval_seconds=0.05)


def events(sessions: sessionmaker[Session]) -> list[AuditEvent]:
    with sessions() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def call(n: int, user: str | None = "u1") -> CallInfo:
    return CallInfo(method="/pixelcheck.v1.AuthService/GetCurrentUser", request_id=f"r{n}",
                    peer="ipv4:10.0.0.1:1234",
                    principal=Principal(user, frozenset({"USER"})) if user else None)


def test_without_start_flush_writes_synchronously_in_batches(sessions: sessionmaker[Session],
                                                              settings: Settings) -> None:
    before = len(events(sessions))
    recorder = AuditRecorder(sessions, settings)
    for n in range(120):
        recorder.record_call(call(n), "OK", n)
    assert len(events(sessions)) == before  # nothing touched the database on the recording path
    assert recorder.flush() is True
    stored = events(sessions)[before:]
    assert [e.request_id for e in stored] == [f"r{n}" for n in range(120)]
    assert {(e.action, e.actor_id, e.status_code, e.peer) for e in stored} == {
        ("rpc", "u1", "OK", "ipv4:10.0.0.1:1234")}
    with sessions() as session:
        assert verify_stored(session).ok


def test_started_writer_drains_the_buffer_and_close_flushes(sessions: sessionmaker[Session],
                                                              settings: Settings) -> None:
    before = len(events(sessions))
    recorder = AuditRecorder(sessions, settings)
    recorder.start()
    recorder.record_call(call(1, user=None), "UNAUTHENTICATED", 3)
    recorder.record("upload.rejected", actor_id="u2", target="cat.png",
                    payload={"reason": "IMAGE_TOO_LARGE", "size_bytes": 10, "path": Path("/x")})
    recorder.close()
    stored = events(sessions)[before:]
    assert [(e.action, e.actor_id, e.status_code) for e in stored] == [
        ("rpc", "", "UNAUTHENTICATED"), ("upload.rejected", "u2", "")]
    assert stored[1].payload == {"reason": "IMAGE_TOO_LARGE", "size_bytes": 10, "path": "/x"}


def test_over_long_fields_are_cut_to_their_columns_not_rejected(sessions: sessionmaker[Session],
                                                                 settings: Settings) -> None:
    recorder = AuditRecorder(sessions, settings)
    recorder.record("x" * 100, target="t" * 1000, request_id="r" * 500)
    assert recorder.flush()
    last = events(sessions)[-1]
    assert (len(last.action), len(last.target), len(last.request_id)) == (64, 255, 128)


def test_database_down_never_raises_keeps_newest_events_and_counts_drops(
        settings: Settings, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(recorder_module, "RETRY_DELAYS_SECONDS", (0.0, 0.0))
    # Nothing listens on port 1: every connection is refused, like a database server that is down.
    unreachable = make_session_factory(make_engine("mysql+pymysql://root@127.0.0.1:1/none"))
    drops: list[int] = []
    failures: list[None] = []
    recorder = AuditRecorder(unreachable, settings, max_buffered=10, on_drop=drops.append,
                             on_write_failure=lambda: failures.append(None))
    for n in range(25):
        recorder.record_call(call(n), "OK", 1)
    assert recorder.buffered == 10 and recorder.dropped == 15 and sum(drops) == 15
    with caplog.at_level(logging.ERROR, logger="pixelcheck.audit"):
        assert recorder.flush(timeout=0.5) is False
    assert failures and recorder.write_failures == len(failures)
    assert recorder.buffered == 10  # put back, oldest dropped: events 15..24 wait for the database
    assert "audit trail write failed" in caplog.text
