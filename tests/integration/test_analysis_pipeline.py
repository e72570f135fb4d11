"""The worker's pipeline keeps in the database exactly the states a client reads (RUNNING from the claim,
then the outcome), publishes every stage on the bus, and stores one result per image across attempts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.analysis.detector import Stage
from pixelcheck.analysis.detector.verdict import Verdict
from pixelcheck.analysis.models import Analysis
from pixelcheck.analysis.pipeline import AnalysisPipeline
from pixelcheck.analysis.progress import ProgressEvent
from pixelcheck.blobs import SqlBlobStore
from pixelcheck.db import make_engine, make_session_factory, new_id, unit_of_work, upgrade
from pixelcheck.errors import Unavailable
from pixelcheck.iam.models import User
from pixelcheck.ingestion.models import Image
from pixelcheck.webhooks.models import WebhookDelivery, WebhookEndpoint
from pixelcheck.webhooks.service import Webhooks
from tests.integration.test_reports_service import png_bytes, verdict

STAGES = (Stage.DECODING, Stage.PROVENANCE, Stage.PIXEL_MODEL, Stage.FUSION)


@dataclass
class Recorder:
    events: list[ProgressEvent] = field(default_factory=list)
    audit: list[str] = field(default_factory=list)

    def publish(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def record_in(self, session: Any, action: str, **_: Any) -> None:
        self.audit.append(action)

    def build_report(self, report_id: str) -> None:
        raise AssertionError("no automatic reports here")


class StageReadingDetector:
    """Runs the stages of a real detector call and, at each, reads the row as a client would."""

    def __init__(self, read: Callable[[], tuple[str, str]], result: Verdict) -> None:
        self._read, self._result = read, result
        self.seen: list[tuple[str, str]] = []
        self.info = None

    def analyze(self, data: bytes, *, on_stage: Callable[[Stage], None], **_: object) -> Verdict:
        assert data.startswith(b"\x89PNG")
        for stage in STAGES:
            on_stage(stage)
            self.seen.append(self._read())
        return self._result


@pytest.fixture
def sessions(fresh_database_url: Callable[[], str]) -> Iterator[tuple[sessionmaker[Session], sessionmaker[Session]]]:
    url = fresh_database_url()
    upgrade(url)
    engine = make_engine(url, pool_size=4)
    yield make_session_factory(engine), make_session_factory(engine, readonly=True)
    engine.dispose()


def queued_analysis(write: sessionmaker[Session], blobs: SqlBlobStore, *, filename: str = "a.png",
                    content_type: str = "image/png", data: bytes | None = None,
                    external_id: str = "") -> tuple[str, str]:
    """A new owner, image and QUEUED analysis with the image's bytes stored: (image id, owner id)."""
    image_id, owner_id = new_id(), new_id()
    with unit_of_work(write) as session:
        session.add(User(id=owner_id, username=f"u{owner_id[:12]}", email=f"{owner_id}@example.test",
                         display_name="Owner"))
        session.flush()
        session.add(Image(id=image_id, owner_id=owner_id, filename=filename, content_type=content_type,
                          size_bytes=10, width=64, height=48, sha256="0" * 64, external_id=external_id))
        session.flush()
        session.add(Analysis(image_id=image_id, owner_id=owner_id, filename=filename, external_id=external_id))
        if data is not None or content_type == "image/png":
            blobs.put(session, f"image/{image_id}", png_bytes(image_id) if data is None else data)
    return image_id, owner_id


def test_only_the_claim_and_the_outcome_are_written_and_every_stage_is_published(
        sessions: tuple[sessionmaker[Session], sessionmaker[Session]]) -> None:
    write, read = sessions
    blobs = SqlBlobStore(read)
    image_id, _ = queued_analysis(write, blobs)

    def row_state() -> tuple[str, str]:
        with read() as session:
            state, stage = session.execute(select(Analysis.state, Analysis.stage)
                                           .where(Analysis.image_id == image_id)).one()
            return state, stage

    assert row_state() == ("QUEUED", "QUEUED")
    bus = Recorder()
    detector = StageReadingDetector(row_state, verdict())
    pipeline = AnalysisPipeline(sessions=write, read_sessions=read, blobs=blobs, detector=lambda: detector,  # type: ignore[arg-type,return-value]
                                publisher=bus, audit=bus, reports=None, report_queue=bus,  # type: ignore[arg-type]
                                stale_after=timedelta(seconds=60), max_attempts=3)

    assert pipeline.run(image_id) == "succeeded"

    assert detector.seen == [("RUNNING", "DECODING")] * len(STAGES)  # the database says RUNNING throughout
    assert [(e.state, e.stage) for e in bus.events] == [
        ("RUNNING", "DECODING"), *(("RUNNING", str(s)) for s in STAGES), ("RUNNING", "SAVING"),
        ("SUCCEEDED", "DONE")]
    assert {e.attempt for e in bus.events} == {1}
    with read() as session:
        row = session.scalars(select(Analysis).where(Analysis.image_id == image_id)).one()
    assert (row.state, row.stage, row.progress, row.attempts, row.label) == ("SUCCEEDED", "DONE", 1.0, 1, "AI")
    assert row.start_time is not None and row.finish_time is not None and row.duration_ms is not None
    assert set(row.stage_timings_ms) == {"DECODING", "PROVENANCE", "PIXEL_MODEL", "FUSION", "SAVING"}
    assert bus.audit == ["analysis.succeeded"]
    # A redelivered task finds the analysis finished: no second result, no second event.
    assert pipeline.run(image_id) == "skipped"
    assert len(bus.events) == len(STAGES) + 3


class DeliveryQueue:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def deliver_webhook(self, delivery_id: str, countdown: float = 0.0) -> None:
        self.sent.append(delivery_id)


def test_a_failed_analysis_writes_its_webhook_delivery_with_the_outcome_and_sends_it_after_the_commit(
        sessions: tuple[sessionmaker[Session], sessionmaker[Session]]) -> None:
    write, read = sessions
    image_id, owner_id = new_id(), new_id()
    with unit_of_work(write) as session:
        session.add(User(id=owner_id, username="owner", email="owner@example.test", display_name="Owner"))
        session.flush()
        session.add(Image(id=image_id, owner_id=owner_id, filename="gone.png", content_type="image/png",
                          size_bytes=10, width=64, height=48, sha256="0" * 64, external_id="case-9"))
        session.flush()
        session.add(Analysis(image_id=image_id, owner_id=owner_id, filename="gone.png", external_id="case-9"))
        failed_hook = WebhookEndpoint(owner_id=owner_id, url="http://127.0.0.3/hook", secret="whsec_x",
                                      event_types=["analysis.failed"])
        verdict_hook = WebhookEndpoint(owner_id=owner_id, url="http://127.0.0.3/other", secret="whsec_y",
                                       event_types=["analysis.succeeded"])
        session.add_all([failed_hook, verdict_hook])
        session.flush()
        failed_id = failed_hook.id
    bus, queue = Recorder(), DeliveryQueue()
    webhooks = Webhooks(sessions=write, read_sessions=read, audit=bus, queue=queue, page_token_key=b"k" * 32,
                        max_endpoints=10)
    pipeline = AnalysisPipeline(sessions=write, read_sessions=read, blobs=SqlBlobStore(read),  # the bytes are missing
                                detector=lambda: StageReadingDetector(lambda: ("", ""), verdict()),  # type: ignore[arg-type,return-value]
                                publisher=bus, audit=bus, reports=None, report_queue=bus,  # type: ignore[arg-type]
                                stale_after=timedelta(seconds=60), max_attempts=3, webhooks=webhooks)

    assert pipeline.run(image_id) == "failed"

    with read() as session:
        [delivery] = session.scalars(select(WebhookDelivery)).all()
    assert (delivery.endpoint_id, delivery.event_type, delivery.subject_id) == (failed_id, "analysis.failed", image_id)
    body = json.loads(delivery.body)
    assert body["type"] == "analysis.failed" and body["data"]["external_id"] == "case-9"
    assert "bytes are missing" in body["data"]["failure_reason"] and body["data"]["filename"] == "gone.png"
    assert queue.sent == [delivery.id]
    assert pipeline.run(image_id) == "skipped" and queue.sent == [delivery.id]  # a redelivered task adds nothing


class BlobsUnreachableOnce:
    """A blob store whose first read meets the database unreachable, as during an outage."""

    def __init__(self, blobs: SqlBlobStore) -> None:
        self._blobs, self.failed = blobs, False

    def get(self, session: Session, key: str) -> bytes | None:
        if not self.failed:
            self.failed = True
            raise Unavailable("The database is unreachable; try again shortly", reason="DATABASE_UNAVAILABLE")
        return self._blobs.get(session, key)


def test_a_run_that_meets_the_database_unreachable_after_its_claim_hands_it_back_for_the_retry_at_once(
        sessions: tuple[sessionmaker[Session], sessionmaker[Session]]) -> None:
    # Left RUNNING, the analysis would be claimed again only after the stale period (60 s here, 120 s by
    # default): the soak's watchers of analyses in flight during a database outage waited past 180 s.
    write, read = sessions
    image_id, _ = queued_analysis(write, SqlBlobStore(read))
    bus = Recorder()
    detector = StageReadingDetector(lambda: ("", ""), verdict())
    pipeline = AnalysisPipeline(sessions=write, read_sessions=read, blobs=BlobsUnreachableOnce(SqlBlobStore(read)),  # type: ignore[arg-type]
                                detector=lambda: detector, publisher=bus, audit=bus, reports=None,  # type: ignore[arg-type,return-value]
                                report_queue=bus, stale_after=timedelta(seconds=60), max_attempts=3)  # type: ignore[arg-type]

    with pytest.raises(Unavailable):
        pipeline.run(image_id)
    with read() as session:
        state, attempts = session.execute(select(Analysis.state, Analysis.attempts)
                                          .where(Analysis.image_id == image_id)).one()
    assert (state, attempts) == ("QUEUED", 0)  # handed back, and the outage is not counted as an attempt

    assert pipeline.run(image_id) == "succeeded"  # the retry claims it at once
    with read() as session:
        assert session.execute(select(Analysis.state, Analysis.attempts)
                               .where(Analysis.image_id == image_id)).one() == ("SUCCEEDED", 1)
