"""The audit chain on a real database: concurrent writer processes, tampering caught, pruning behind a
checkpoint, image and report retention."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.audit import chain
from pixelcheck.audit.chain import EventContent
from pixelcheck.audit.models import AuditCheckpoint, AuditEvent
from pixelcheck.audit.retention import apply_retention
from pixelcheck.audit.service import AuditTrail
from pixelcheck.blobs import BlobRow, SqlBlobStore
from pixelcheck.db import make_engine, make_session_factory, upgrade, utcnow
from pixelcheck.iam.models import User
from pixelcheck.ingestion.models import Image
from pixelcheck.reports.models import Report
from pixelcheck.settings import Settings
from tests.audit_writers import finish_writers, start_writers


@dataclass
class Database:
    url: str
    sessions: sessionmaker[Session]
    trail: AuditTrail
    settings: Settings

    def execute(self, sql: str, **params: object) -> None:
        with self.sessions.begin() as session:
            session.execute(text(sql), params)

    def count(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


@pytest.fixture
def database(fresh_database_url: Callable[[], str], base_settings: Settings) -> Iterator[Database]:
    url = fresh_database_url()
    upgrade(url)
    engine = make_engine(url, pool_size=4)
    settings = base_settings.with_overrides(database_url=url)
    sessions = make_session_factory(engine)
    yield Database(url, sessions, AuditTrail(sessions, make_session_factory(engine, readonly=True), settings),
                   settings)
    engine.dispose()


def append_old(db: Database, count: int, *, days_ago: float) -> None:
    when = utcnow() - timedelta(days=days_ago)
    with db.sessions.begin() as session:
        chain.append(session, [EventContent(action="test.old", target=str(n), occurred_time=when)
                               for n in range(count)])


@pytest.mark.slow
def test_two_processes_writing_at_once_keep_one_verifiable_chain(database: Database) -> None:
    per_process = 400
    results = finish_writers(start_writers(database.url, ("alpha", "beta"), count=per_process))
    assert results == [(per_process, per_process, 0)] * 2  # all written, none dropped
    direct = per_process // 10
    assert database.count() == 2 * (per_process + direct)
    with database.sessions() as session:  # both writers' events really are interleaved
        peers = list(session.scalars(select(AuditEvent.peer).where(AuditEvent.action == "rpc")
                                     .order_by(AuditEvent.id)))
    assert sum(1 for a, b in zip(peers, peers[1:], strict=False) if a != b) > 1
    result = database.trail.verify()
    assert (result.ok, result.checked_count, result.first_broken_event_id) == (True, 2 * (per_process + direct), 0)


def test_a_row_edited_behind_the_services_back_is_named(database: Database) -> None:
    append_old(database, 30, days_ago=0)
    assert database.trail.verify().ok
    database.execute("UPDATE audit_events SET status_code = 'OK' WHERE id = :id", id=17)
    result = database.trail.verify()
    assert (result.ok, result.checked_count, result.first_broken_event_id) == (False, 16, 17)


def test_a_deleted_row_is_named_by_the_event_after_it(database: Database) -> None:
    append_old(database, 30, days_ago=0)
    database.execute("DELETE FROM audit_events WHERE id = 9")
    result = database.trail.verify()
    assert (result.ok, result.first_broken_event_id) == (False, 10)


def test_an_edited_payload_is_caught(database: Database) -> None:
    database.trail.record_event(actor_id="u1", action="test.payload", target="t", payload={"amount": 10})
    database.execute("UPDATE audit_events SET payload = :p WHERE id = 1", p=json.dumps({"amount": 11}))
    assert database.trail.verify().first_broken_event_id == 1


def test_pruned_chain_still_verifies_from_its_checkpoint(database: Database) -> None:
    append_old(database, 25, days_ago=40)
    append_old(database, 10, days_ago=1)
    settings = database.settings.with_overrides(audit_retention_days=30)
    outcome = apply_retention(database.sessions, SqlBlobStore(), settings)
    assert outcome.audit_events_pruned == 25
    with database.sessions() as session:
        checkpoint = session.scalars(select(AuditCheckpoint)).one()
        first_kept = session.get_one(AuditEvent, 26)
    assert (checkpoint.last_pruned_event_id, checkpoint.pruned_count) == (25, 25)
    assert checkpoint.last_pruned_hash == first_kept.prev_hash
    result = database.trail.verify()
    assert (result.ok, result.checked_count) == (True, 10)
    database.trail.record_event(actor_id="u1", action="test.after", target="", payload={})
    assert database.trail.verify().checked_count == 11
    database.execute("UPDATE audit_events SET actor_id = 'x' WHERE id = 30")
    assert database.trail.verify().first_broken_event_id == 30


def test_pruning_keeps_everything_after_a_late_recorded_event(database: Database) -> None:
    append_old(database, 5, days_ago=40)
    append_old(database, 1, days_ago=1)  # recorded late, between old events
    append_old(database, 5, days_ago=40)
    settings = database.settings.with_overrides(audit_retention_days=30)
    assert apply_retention(database.sessions, SqlBlobStore(), settings).audit_events_pruned == 5
    assert database.count() == 6 and database.trail.verify().ok


def test_retention_is_off_by_default(database: Database) -> None:
    append_old(database, 5, days_ago=4000)
    assert apply_retention(database.sessions, SqlBlobStore(), database.settings).audit_events_pruned == 0
    assert database.count() == 5


def test_image_retention_deletes_old_images_reports_and_their_bytes(database: Database) -> None:
    blobs = SqlBlobStore()
    old, new = utcnow() - timedelta(days=10), utcnow()
    with database.sessions.begin() as session:
        session.add(User(id="u" * 32, username="owner", email="o@example.com", display_name="O"))
        session.flush()
        for image_id, when in (("a" * 32, old), ("b" * 32, new)):
            session.add(Image(id=image_id, owner_id="u" * 32, filename="x.png", content_type="image/png",
                              size_bytes=3, width=1, height=1, sha256=image_id * 2, create_time=when))
            blobs.put(session, f"image/{image_id}", b"abc")
        for report_id, when in (("c" * 32, old), ("d" * 32, new)):
            session.add(Report(id=report_id, owner_id="u" * 32, scope="SINGLE", format="PDF", title="t",
                               create_time=when))
            blobs.put(session, f"report/{report_id}", b"%PDF")
    settings = database.settings.with_overrides(image_retention_days=7)
    outcome = apply_retention(database.sessions, blobs, settings)
    assert (outcome.images_deleted, outcome.reports_deleted) == (1, 1)
    with database.sessions() as session:
        assert list(session.scalars(select(Image.id))) == ["b" * 32]
        assert list(session.scalars(select(Report.id))) == ["d" * 32]
        assert sorted(session.scalars(select(BlobRow.key))) == [f"image/{'b' * 32}", f"report/{'d' * 32}"]
