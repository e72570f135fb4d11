"""VerifyAuditLog and `pixelcheck audit verify` while two other processes keep appending to the chain.

Each verification reads the chain head and then its events page by page; without one consistent snapshot,
events appended between those reads look like rows added behind the chain's back. Here 200 verifications
through the RPC must all say ok while the chain grows, and real tampering done during the same load (a
changed row, a deleted row, a rewritten tail) must still be named at the event where the chain breaks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pixelcheck.v1 import audit_pb2, audit_pb2_grpc
from sqlalchemy import insert, select, text

from pixelcheck import cli
from pixelcheck.audit import chain
from pixelcheck.audit.commands import BROKEN_EXIT_CODE
from pixelcheck.audit.models import AuditChainHead, AuditEvent
from pixelcheck.db import upgrade
from pixelcheck.settings import Settings
from tests.audit_writers import finish_writers, start_writers
from tests.conftest import TEST_DATABASE_URL, ScratchDatabases
from tests.e2e.flows import SignedInUser, new_admin
from tests.e2e.servers import LiveServer, start_live_server

pytestmark = pytest.mark.slow

VERIFICATIONS = 200
WRITER_PAUSE_SECONDS = 0.05  # each writer's pace: the chain grows by about fifty events a second in all
WAIT_SECONDS = 60.0  # deadline for the writers to make progress on a loaded machine


@pytest.fixture(scope="module")
def own_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of this module's own: its tampering must not break other modules' chains."""
    databases = ScratchDatabases(TEST_DATABASE_URL, tmp_path_factory.mktemp("audit-load"))
    try:
        url = databases.create()
        upgrade(url)
        yield url
    finally:
        databases.drop_all()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server(base_settings: Settings, own_database_url: str) -> AsyncIterator[LiveServer]:
    live = await start_live_server(base_settings.with_overrides(database_url=own_database_url))
    try:
        yield live
    finally:
        await live.stop()


@pytest.fixture(scope="module")
def writers(own_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two writer processes appending until the module ends (or a bounded count); yields their stop file."""
    stop_file = tmp_path_factory.mktemp("writers") / "stop"
    processes = start_writers(own_database_url, ("alpha", "beta"), count=100_000, pause=WRITER_PAUSE_SECONDS,
                              stop_file=stop_file, start_in=0.0)
    try:
        yield stop_file
    finally:
        stop_file.touch()
        results = finish_writers(processes, timeout=120)
        assert all(dropped == 0 for _, _, dropped in results)


def head_id(server: LiveServer) -> int:
    with server.container.read_sessions() as session:
        return session.scalar(select(AuditChainHead.last_event_id)) or 0


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not await asyncio.to_thread(condition):
        assert time.monotonic() < deadline, f"{what} within {WAIT_SECONDS:.0f} s"
        await asyncio.sleep(0.05)


async def chain_grows_past(server: LiveServer, event_id: int) -> None:
    await until(lambda: head_id(server) > event_id, f"the writers appended after event {event_id}")


def write(server: LiveServer, action: Callable[[Any], None]) -> None:
    """Run action(session) in one write transaction holding the chain head, as an appender does."""
    with server.container.sessions.begin() as session:
        session.scalar(select(AuditChainHead).with_for_update())
        action(session)


def stored_row(server: LiveServer, event_id: int) -> dict[str, Any]:
    with server.container.read_sessions() as session:
        row = session.execute(select(AuditEvent.__table__).where(AuditEvent.id == event_id)).one()
    return dict(row._mapping)


async def verify(server: LiveServer, admin: SignedInUser) -> audit_pb2.VerifyAuditLogResponse:
    return await server.stub(audit_pb2_grpc.AuditServiceStub).VerifyAuditLog(
        audit_pb2.VerifyAuditLogRequest(), metadata=admin.metadata)


async def run_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                  ) -> tuple[int, str]:
    """`pixelcheck audit verify` in-process with the server's settings: (exit code, what it printed)."""
    monkeypatch.setattr(cli, "configure_logging", lambda settings: None)
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)
    capsys.readouterr()
    code = await asyncio.to_thread(cli.main, ["audit", "verify"])
    return code, capsys.readouterr().out


async def tampered(server: LiveServer, admin: SignedInUser, tamper: Callable[[Any], None],
                   restore: Callable[[Any], None]) -> audit_pb2.VerifyAuditLogResponse:
    """Verify once after tamper (then restore); the broken answer."""
    await asyncio.to_thread(write, server, tamper)
    try:
        return await verify(server, admin)
    finally:
        await asyncio.to_thread(write, server, restore)


@pytest.mark.timeout(900)  # 200 walks of a growing chain: minutes on a machine whose cores are all busy
async def test_two_hundred_verifications_during_appends_raise_no_false_alarm(server, writers, monkeypatch,
                                                                              capsys):
    admin = await new_admin(server)
    await chain_grows_past(server, 200)
    answers = [await verify(server, admin) for _ in range(VERIFICATIONS)]
    false_alarms = [(a.checked_count, a.first_broken_event_id) for a in answers if not a.ok]
    assert false_alarms == []
    counts = [a.checked_count for a in answers]
    assert counts == sorted(counts) and counts[-1] > counts[0]  # the chain really grew meanwhile
    for _ in range(3):
        code, out = await run_cli(server.settings, monkeypatch, capsys)
        assert (code, out.startswith("audit chain intact: ")) == (0, True), out


async def test_a_row_changed_during_appends_is_named(server, writers, monkeypatch, capsys):
    admin = await new_admin(server)
    await chain_grows_past(server, 300)
    victim = 150
    original = stored_row(server, victim)["target"]

    def set_target(value: str) -> Callable[[Any], None]:
        return lambda session: session.execute(text("UPDATE audit_events SET target = :t WHERE id = :id"),
                                               {"t": value, "id": victim})

    await asyncio.to_thread(write, server, set_target("changed"))
    try:
        broken = await verify(server, admin)
        assert (broken.ok, broken.first_broken_event_id, broken.checked_count) == (False, victim, victim - 1)
        code, out = await run_cli(server.settings, monkeypatch, capsys)
        assert (code, out) == (BROKEN_EXIT_CODE, f"audit chain BROKEN at event {victim} "
                                                 f"({victim - 1} events before it verified)\n")
    finally:
        await asyncio.to_thread(write, server, set_target(original))
    assert (await verify(server, admin)).ok


async def test_a_row_deleted_during_appends_is_named_by_the_event_after_it(server, writers):
    admin = await new_admin(server)
    await chain_grows_past(server, 300)
    victim = 220
    row = stored_row(server, victim)
    broken = await tampered(
        server, admin,
        lambda session: session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": victim}),
        lambda session: session.execute(insert(AuditEvent.__table__), [row]))
    assert (broken.ok, broken.first_broken_event_id) == (False, victim + 1)
    assert (await verify(server, admin)).ok


async def test_a_tail_rewritten_with_recomputed_hashes_is_named_once_the_chain_goes_on(server, writers):
    """The rewritten events hash consistently among themselves; the chain breaks where the next appended
    event still links to the original last event's hash."""
    admin = await new_admin(server)
    await chain_grows_past(server, 300)
    rewritten: list[int] = []

    def rewrite_tail(session: Any) -> None:
        head = session.scalar(select(AuditChainHead))
        tail = list(session.scalars(select(AuditEvent).where(AuditEvent.id > head.last_event_id - 5)
                                    .order_by(AuditEvent.id)))
        before = session.scalar(select(AuditEvent.hash).where(AuditEvent.id == tail[0].id - 1))
        contents = [chain.content_of(event) for event in tail]
        forged = [dataclasses.replace(c, target=f"forged-{c.target}") for c in contents]
        for event, relinked in zip(tail, chain.link(tail[0].id, before, forged), strict=True):
            event.target, event.prev_hash, event.hash = relinked.content.target, relinked.prev_hash, relinked.hash
            rewritten.append(event.id)

    await asyncio.to_thread(write, server, rewrite_tail)
    last = rewritten[-1]
    await chain_grows_past(server, last)
    broken = await verify(server, admin)
    assert (broken.ok, broken.first_broken_event_id, broken.checked_count) == (False, last + 1, last)
