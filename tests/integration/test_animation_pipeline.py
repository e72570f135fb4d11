"""An animation through the worker's pipeline with the real detector: the frames read are published as they
go, the timeline is stored with the verdict and read back, an animation whose frames all fail is FAILED
with a reason and no half-stored verdict, and a long analysis keeps its claim alive."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.analysis.detector import DEFAULT_MODEL_DIR, Detector, load_detector
from pixelcheck.analysis.detector.verdict import Verdict
from pixelcheck.analysis.models import Analysis
from pixelcheck.analysis.pipeline import AnalysisPipeline
from pixelcheck.analysis.records import verdict_of
from pixelcheck.blobs import SqlBlobStore
from pixelcheck.db import make_engine, make_session_factory, upgrade
from tests import images
from tests.integration.test_analysis_pipeline import Recorder, queued_analysis
from tests.integration.test_reports_service import verdict

Sessions = tuple[sessionmaker[Session], sessionmaker[Session]]


@pytest.fixture
def sessions(fresh_database_url: Callable[[], str]) -> Iterator[Sessions]:
    url = fresh_database_url()
    upgrade(url)
    engine = make_engine(url, pool_size=4)
    yield make_session_factory(engine), make_session_factory(engine, readonly=True)
    engine.dispose()


@pytest.fixture(scope="module")
def detector() -> Detector:
    return load_detector(DEFAULT_MODEL_DIR)


def analysed(sessions: Sessions, detector: Detector, data: bytes) -> tuple[str, Recorder, Analysis]:
    write, read = sessions
    blobs = SqlBlobStore(read)
    image_id, _ = queued_analysis(write, blobs, filename="a.gif", content_type="image/gif", data=data)
    bus = Recorder()
    pipeline = AnalysisPipeline(sessions=write, read_sessions=read, blobs=blobs, detector=lambda: detector,
                                publisher=bus, audit=bus, reports=None, report_queue=bus,  # type: ignore[arg-type]
                                stale_after=timedelta(seconds=60), max_attempts=3)
    pipeline.run(image_id)
    with read() as session:
        row = session.scalars(select(Analysis).where(Analysis.image_id == image_id)).one()
    return image_id, bus, row


def test_frames_read_are_published_in_order_and_the_timeline_is_stored(sessions: Sessions,
                                                                        detector: Detector) -> None:
    _, bus, row = analysed(sessions, detector, images.animated("GIF", count=20, duration_ms=250))
    frames = [e for e in bus.events if e.message.endswith(" frames")]
    assert [e.message for e in frames] == [f"Examining the pixels of each frame: {n} of 5 frames"
                                           for n in range(1, 6)]
    assert all(e.stage == "PIXEL_MODEL" and e.state == "RUNNING" for e in frames)
    progress = [e.progress for e in bus.events]
    assert progress == sorted(progress) and 0.45 < frames[0].progress < frames[-1].progress == 0.8
    assert row.state == "SUCCEEDED" and row.timeline is not None
    verdict = verdict_of(row)
    assert verdict is not None and verdict.timeline is not None
    assert [(f.index, f.time_ms) for f in verdict.timeline.frames] == [(4 * n, 1000 * n) for n in range(5)]
    assert verdict.summary.endswith(verdict.timeline.summary)


def test_a_still_picture_stores_no_timeline(sessions: Sessions, detector: Detector) -> None:
    _, bus, row = analysed(sessions, detector, images.png(160, 120))
    assert row.state == "SUCCEEDED" and row.timeline is None
    assert not [e for e in bus.events if e.message.endswith(" frames")]


def test_an_animation_whose_frames_all_fail_is_failed_with_a_reason(sessions: Sessions,
                                                                    detector: Detector) -> None:
    _, bus, row = analysed(sessions, detector, images.gif_with_corrupt_frame(0, 1, 2, count=3))
    assert (row.state, row.failure_reason) == ("FAILED", "The image data is damaged and could not be decoded.")
    assert row.timeline is None and row.label is None
    assert bus.audit == ["analysis.failed"]


class SlowDetector:
    """Takes longer than the stale period, noting the claim's update_time before and after."""

    info = None

    def __init__(self, read_update_time: Callable[[], object]) -> None:
        self._read = read_update_time
        self.update_times: list[object] = []

    def analyze(self, data: bytes, **_: object) -> Verdict:
        self.update_times.append(self._read())
        time.sleep(0.8)
        self.update_times.append(self._read())
        return verdict()


def test_a_long_analysis_renews_its_claim_so_that_it_does_not_look_lost(sessions: Sessions) -> None:
    write, read = sessions
    blobs = SqlBlobStore(read)
    image_id, _ = queued_analysis(write, blobs, filename="a.gif", content_type="image/gif", data=b"GIF89a")

    def update_time() -> object:
        with read() as session:
            return session.scalar(select(Analysis.update_time).where(Analysis.image_id == image_id))

    slow, bus = SlowDetector(update_time), Recorder()
    pipeline = AnalysisPipeline(sessions=write, read_sessions=read, blobs=blobs, detector=lambda: slow,  # type: ignore[arg-type,return-value]
                                publisher=bus, audit=bus, reports=None, report_queue=bus,  # type: ignore[arg-type]
                                stale_after=timedelta(seconds=0.6), max_attempts=3)
    assert pipeline.run(image_id) == "succeeded"
    before, after = slow.update_times
    assert after > before  # type: ignore[operator]
