"""Region-map runs on a real database: handing the worker back to waiting verdicts, resuming, finishing."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from PIL import Image as PILImage
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.analysis.detector.verdict import Band, ImageFacts, Label, Verdict
from pixelcheck.analysis.models import Analysis
from pixelcheck.analysis.region_maps import STEP_REGIONS, RegionMaps, start_region_map
from pixelcheck.blobs import SqlBlobStore
from pixelcheck.db import new_id, unit_of_work, utcnow
from pixelcheck.iam.models import User, UserRole
from pixelcheck.ingestion.models import Image


@dataclass
class FakeDetector:
    """Scores each box by its column, and counts the boxes it was asked about."""

    scored: list[tuple[int, int, int, int]] = field(default_factory=list)

    def score_regions(self, rgb: Any, boxes: list[tuple[int, int, int, int]]) -> list[float]:
        self.scored += boxes
        return [0.95 if box[0] < rgb.width / 2 else 0.05 for box in boxes]


@dataclass
class RecordingQueue:
    maps: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)

    def map_regions(self, image_id: str) -> None:
        self.maps.append(image_id)

    def build_report(self, report_id: str) -> None:
        self.reports.append(report_id)


def analysed_image(sessions: sessionmaker[Session], width: int = 640, height: int = 512, report_id: str = "") -> str:
    image_id, owner = new_id(), new_id()
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), (90, 120, 60)).save(buffer, "PNG")
    data = buffer.getvalue()
    verdict = Verdict(label=Label.REAL, prob_ai=0.3, confidence=0.7, band=Band.MEDIUM, model_version="m-1",
                      image_facts=ImageFacts("PNG", width, height, len(data)))
    with unit_of_work(sessions) as session:
        session.add(User(id=owner, username=f"u{owner[:12]}", email=f"{owner}@example.test", display_name="Ada",
                         is_service=False, roles=[UserRole(role_name="USER")]))
        session.flush()
        session.add(Image(id=image_id, owner_id=owner, filename="scene.png", content_type="image/png",
                          size_bytes=len(data), width=width, height=height, sha256=hashlib.sha256(data).hexdigest()))
        session.flush()
        SqlBlobStore().put(session, f"image/{image_id}", data)
        row = Analysis(image_id=image_id, owner_id=owner, filename="scene.png", state="SUCCEEDED", label="REAL",
                       report_id=report_id)
        start_region_map(row, verdict)
        session.add(row)
    return image_id


def mapper(sessions: sessionmaker[Session], detector: FakeDetector, queue: RecordingQueue,
           waiting: list[bool]) -> RegionMaps:
    return RegionMaps(sessions=sessions, read_sessions=sessions, blobs=SqlBlobStore(), detector=lambda: detector,  # type: ignore[arg-type, return-value]
                      queue=queue, others_waiting=lambda: waiting.pop(0) if waiting else False,
                      stale_after=timedelta(seconds=60), max_attempts=3)


def stored(sessions: sessionmaker[Session], image_id: str) -> Analysis:
    with sessions() as session:
        row = session.scalar(select(Analysis).where(Analysis.image_id == image_id))
        assert row is not None
        session.expunge(row)
        return row


def test_a_map_hands_the_worker_back_while_verdicts_wait_and_resumes_where_it_stopped(sessions) -> None:
    image_id = analysed_image(sessions, report_id="r" * 32)
    detector, queue = FakeDetector(), RecordingQueue()
    maps = mapper(sessions, detector, queue, waiting=[True, False, False, False])
    assert maps.run(image_id) == "yielded"
    row = stored(sessions, image_id)
    assert (row.region_map_state, row.region_map_attempts) == ("PENDING", 0)  # handing back is no failure
    assert len(row.region_map["probs"]) == STEP_REGIONS and queue.maps == [image_id] and queue.reports == []

    assert maps.run(image_id) == "ready"
    row = stored(sessions, image_id)
    assert row.region_map_state == "READY" and len(row.region_map["probs"]) == 20
    assert len(detector.scored) == 20  # no region scored twice
    assert "towards the left and towards the right" in row.region_map["disagreement"]
    assert queue.reports == ["r" * 32]  # the automatic report waited for the map
    assert maps.run(image_id) == "skipped"  # a redelivered task finds nothing to do


def test_a_map_left_running_by_a_dead_worker_is_found_and_taken_over(sessions) -> None:
    image_id = analysed_image(sessions)
    with unit_of_work(sessions) as session:
        session.execute(update(Analysis).where(Analysis.image_id == image_id).values(
            region_map_state="RUNNING", region_map_attempts=1, region_map_update_time=utcnow() - timedelta(hours=1)))
    maps = mapper(sessions, FakeDetector(), RecordingQueue(), waiting=[])
    assert image_id in maps.stale_image_ids()
    assert maps.run(image_id) == "ready"
    assert stored(sessions, image_id).region_map_attempts == 2


def test_a_map_interrupted_too_often_fails_with_a_reason(sessions) -> None:
    image_id = analysed_image(sessions)
    with unit_of_work(sessions) as session:
        session.execute(update(Analysis).where(Analysis.image_id == image_id).values(region_map_attempts=3))
    assert mapper(sessions, FakeDetector(), RecordingQueue(), waiting=[]).run(image_id) == "failed"
    row = stored(sessions, image_id)
    assert row.region_map_state == "FAILED" and "interrupted too many times" in row.region_map["reason"]
