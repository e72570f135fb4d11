"""Region maps on a real database: deferred until needed, requested ahead of backlogs, made by idle workers
and handed back to waiting verdicts, recovered after a dead worker."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
import redis
from PIL import Image as PILImage
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.analysis.detector.verdict import Band, ImageFacts, Label, Verdict
from pixelcheck.analysis.models import Analysis, FrameRegionMap
from pixelcheck.analysis.region_maps import STEP_REGIONS, RegionMaps, start_region_map
from pixelcheck.blobs import SqlBlobStore
from pixelcheck.db import new_id, unit_of_work, utcnow
from pixelcheck.errors import FailedPrecondition, InvalidInput, NotFound
from pixelcheck.iam.models import User, UserRole
from pixelcheck.iam.principal import Principal
from pixelcheck.ingestion.models import Image
from tests import images, videos


@dataclass
class FakeDetector:
    """Scores each box by its column, and counts the boxes it was asked about."""

    scored: list[tuple[int, int, int, int]] = field(default_factory=list)

    def score_regions(self, rgb: Any, boxes: list[tuple[int, int, int, int]], *,
                      regions: int | None = None) -> list[float]:
        self.scored += boxes
        return [0.95 if box[0] < rgb.width / 2 else 0.05 for box in boxes]


@dataclass
class RecordingQueue:
    maps: list[tuple[str, bool]] = field(default_factory=list)  # (image id, requested)
    report_maps: list[tuple[str, str]] = field(default_factory=list)  # (image id, owner id)
    reports: list[str] = field(default_factory=list)

    frame_maps: list[tuple[str, int]] = field(default_factory=list)  # (image id, frame index), always requested

    def map_regions(self, image_id: str, *, requested: bool, frame_index: int | None = None) -> None:
        if frame_index is None:
            self.maps.append((image_id, requested))
        else:
            assert requested  # a frame's map is made on request only
            self.frame_maps.append((image_id, frame_index))

    def map_for_report(self, image_id: str, owner_id: str) -> None:
        self.report_maps.append((image_id, owner_id))

    def build_report(self, report_id: str) -> None:
        self.reports.append(report_id)


@dataclass
class Marks:
    """MapRequests in memory."""

    marked_ids: set[str] = field(default_factory=set)

    def mark(self, image_id: str) -> bool:
        fresh = image_id not in self.marked_ids
        self.marked_ids.add(image_id)
        return fresh

    def marked(self, image_id: str) -> bool:
        return image_id in self.marked_ids

    def clear(self, image_id: str) -> None:
        self.marked_ids.discard(image_id)


def analysed_image(sessions: sessionmaker[Session], width: int = 640, height: int = 512, report_id: str = "",
                   age: timedelta = timedelta(0)) -> str:
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
        start_region_map(row, verdict, needed=bool(report_id))
        row.region_map_update_time = utcnow() - age
        session.add(row)
    return image_id


def mapper(sessions: sessionmaker[Session], detector: FakeDetector, queue: RecordingQueue,
           waiting: list[bool], marks: Marks | None = None) -> RegionMaps:
    blobs = SqlBlobStore(sessions)  # open() reads a clip part by part through these sessions
    return RegionMaps(sessions=sessions, read_sessions=sessions, blobs=blobs, detector=lambda: detector,  # type: ignore[arg-type, return-value]
                      queue=queue, others_waiting=lambda: waiting.pop(0) if waiting else False,
                      broker_empty=lambda: not (waiting.pop(0) if waiting else False),
                      requests=marks or Marks(), stale_after=timedelta(seconds=60), max_attempts=3,
                      idle_max_age=timedelta(hours=1))


def stored(sessions: sessionmaker[Session], image_id: str) -> Analysis:
    with sessions() as session:
        row = session.scalar(select(Analysis).where(Analysis.image_id == image_id))
        assert row is not None
        session.expunge(row)
        return row


def set_map_state(sessions: sessionmaker[Session], image_id: str, state: str, age: timedelta = timedelta(0)) -> None:
    with unit_of_work(sessions) as session:
        session.execute(update(Analysis).where(Analysis.image_id == image_id).values(
            region_map_state=state, region_map_update_time=utcnow() - age))


def test_a_fresh_verdict_leaves_its_map_deferred_unless_a_report_waits_for_it(sessions) -> None:
    assert stored(sessions, analysed_image(sessions)).region_map_state == "DEFERRED"
    assert stored(sessions, analysed_image(sessions, report_id="r" * 32)).region_map_state == "PENDING"


def test_an_idle_map_hands_the_worker_back_deferred_without_queueing_and_resumes_where_it_stopped(sessions) -> None:
    image_id = analysed_image(sessions)
    detector, queue = FakeDetector(), RecordingQueue()
    maps = mapper(sessions, detector, queue, waiting=[False, True])
    assert maps.idle_map_candidate() == image_id and queue.maps == [(image_id, False)]
    assert maps.run(image_id, idle=True) == "yielded"
    row = stored(sessions, image_id)
    assert (row.region_map_state, row.region_map_attempts) == ("DEFERRED", 0)  # handing back is no failure
    assert len(row.region_map["probs"]) == STEP_REGIONS and queue.maps == [(image_id, False)]  # nothing re-sent

    assert maps.idle_map_candidate() == image_id  # the next idle moment takes it up again
    assert maps.run(image_id, idle=True) == "ready"
    row = stored(sessions, image_id)
    assert row.region_map_state == "READY" and len(row.region_map["probs"]) == 20
    assert len(detector.scored) == 20  # no region scored twice
    assert "towards the left and towards the right" in row.region_map["disagreement"]
    assert maps.run(image_id) == "skipped"  # a redelivered task finds nothing to do


def test_a_needed_map_runs_to_the_end_while_verdicts_wait_and_then_builds_the_waiting_report(sessions) -> None:
    image_id = analysed_image(sessions, report_id="r" * 32)
    queue = RecordingQueue()
    assert mapper(sessions, FakeDetector(), queue, waiting=[True] * 30).run(image_id) == "ready"
    assert stored(sessions, image_id).region_map_state == "READY" and queue.reports == ["r" * 32]


def test_idle_workers_map_only_the_newest_recent_deferred_image_and_nothing_while_work_waits(sessions) -> None:
    with unit_of_work(sessions) as session:  # the shared database holds other tests' deferred maps
        session.execute(update(Analysis).where(Analysis.region_map_state == "DEFERRED")
                        .values(region_map_state="READY"))
    old = analysed_image(sessions, age=timedelta(hours=2))
    older, newer = analysed_image(sessions, age=timedelta(minutes=2)), analysed_image(sessions)
    queue = RecordingQueue()
    assert mapper(sessions, FakeDetector(), queue, waiting=[True]).idle_map_candidate() is None  # busy
    maps = mapper(sessions, FakeDetector(), queue, waiting=[])
    assert maps.idle_map_candidate() == newer and maps.idle_map_candidate() == older
    assert stored(sessions, newer).region_map_state == "PENDING"
    assert queue.maps == [(newer, False), (older, False)]
    assert stored(sessions, old).region_map_state == "DEFERRED"  # past the idle age: made on request only


def test_asking_for_a_map_queues_it_once_ahead_of_the_backlogs_however_often_one_polls(sessions) -> None:
    image_id = analysed_image(sessions)
    queue, marks = RecordingQueue(), Marks()
    maps = mapper(sessions, FakeDetector(), queue, waiting=[], marks=marks)
    maps.request(image_id)
    maps.request(image_id)
    assert stored(sessions, image_id).region_map_state == "PENDING" and queue.maps == [(image_id, True)]
    assert maps.run(image_id) == "ready" and not marks.marked(image_id)  # done: a later ask is a new one


class UnreachableMarks(Marks):
    """MapRequests whose Redis is down (restarting)."""

    def mark(self, image_id: str) -> bool:
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def test_a_map_asked_for_while_redis_is_unreachable_is_not_ready_yet_and_the_next_poll_queues_it(sessions) -> None:
    image_id = analysed_image(sessions)
    queue = RecordingQueue()
    owner = stored(sessions, image_id).owner_id
    principal = Principal(user_id=owner, roles=frozenset({"USER"}))
    down = mapper(sessions, FakeDetector(), queue, waiting=[], marks=UnreachableMarks())
    with pytest.raises(FailedPrecondition) as refused:
        down.picture(principal, image_id, 0)
    assert refused.value.reason == "REGION_MAP_NOT_READY"  # not an internal error: the client polls again
    assert stored(sessions, image_id).region_map_state == "PENDING" and queue.maps == []
    back = mapper(sessions, FakeDetector(), queue, waiting=[], marks=Marks())
    with pytest.raises(FailedPrecondition):
        back.picture(principal, image_id, 0)
    assert queue.maps == [(image_id, True)]


def test_an_idle_map_asked_for_while_it_ran_goes_to_the_front_when_it_hands_back(sessions) -> None:
    image_id = analysed_image(sessions)
    queue, marks = RecordingQueue(), Marks({"placeholder"})
    maps = mapper(sessions, FakeDetector(), queue, waiting=[False, True], marks=marks)
    maps.idle_map_candidate()
    marks.mark(image_id)
    assert maps.run(image_id, idle=True) == "yielded"
    assert queue.maps == [(image_id, False), (image_id, True)]
    assert stored(sessions, image_id).region_map_state == "PENDING"  # queued, as the state says
    assert maps.run(image_id) == "ready"


@dataclass
class AskingDetector(FakeDetector):
    """Scores like FakeDetector; the first time it scores, somebody asks for the map (GetRegionMap)."""

    ask: Any = None

    def score_regions(self, rgb: Any, boxes: list[tuple[int, int, int, int]], *,
                      regions: int | None = None) -> list[float]:
        if self.ask is not None:
            ask, self.ask = self.ask, None
            ask()
        return super().score_regions(rgb, boxes)


def test_a_map_asked_for_while_an_idle_run_makes_it_is_ready_after_the_hand_back_however_the_tasks_interleave(
        sessions) -> None:
    # The stalled map seen on an idle service: an idle run was making the newest map when its owner asked for
    # it; the request's task made the idle run hand back, and the tasks sent then found nothing to claim, while
    # every later poll saw the request still marked and sent nothing.
    image_id = analysed_image(sessions)
    detector, queue, marks = AskingDetector(), RecordingQueue(), Marks()
    maps = mapper(sessions, detector, queue, waiting=[False, True], marks=marks)
    assert maps.idle_map_candidate() == image_id
    detector.ask = lambda: maps.request(image_id)
    assert maps.run(image_id, idle=True) == "yielded"
    sent = queue.maps[1:]
    assert sent and all(requested for _, requested in sent)
    outcomes = [maps.run(i, idle=not requested) for i, requested in sent]  # the broker delivers them in turn
    assert outcomes[0] == "ready" and set(outcomes[1:]) <= {"skipped"}
    assert stored(sessions, image_id).region_map_state == "READY"


def test_a_requested_task_makes_a_map_an_idle_run_handed_back_after_it_was_sent(sessions) -> None:
    image_id = analysed_image(sessions)
    queue, marks = RecordingQueue(), Marks()
    maps = mapper(sessions, FakeDetector(), queue, waiting=[], marks=marks)
    maps.request(image_id)
    set_map_state(sessions, image_id, "DEFERRED")  # an idle run claimed it and handed it back meanwhile
    assert maps.run(image_id) == "ready"


def test_a_poll_that_finds_the_map_handed_back_sends_it_again_though_an_earlier_ask_is_still_marked(
        sessions) -> None:
    image_id = analysed_image(sessions)
    queue, marks = RecordingQueue(), Marks({image_id})
    maps = mapper(sessions, FakeDetector(), queue, waiting=[], marks=marks)
    maps.request(image_id)
    maps.request(image_id)  # the next poll finds it PENDING: queued once, however often one polls
    assert stored(sessions, image_id).region_map_state == "PENDING" and queue.maps == [(image_id, True)]


def test_an_idle_run_never_takes_a_map_that_is_not_queued_for_it(sessions) -> None:
    image_id = analysed_image(sessions)
    maps = mapper(sessions, FakeDetector(), RecordingQueue(), waiting=[])
    assert maps.run(image_id, idle=True) == "skipped"  # DEFERRED: only a request or a report takes it
    assert stored(sessions, image_id).region_map_state == "DEFERRED"


def test_stale_maps_are_queued_again_when_needed_and_deferred_otherwise(sessions) -> None:
    dead_idle, asked = analysed_image(sessions), analysed_image(sessions)
    reported = analysed_image(sessions, report_id="r" * 32)
    for image_id in (dead_idle, asked, reported):
        set_map_state(sessions, image_id, "RUNNING", age=timedelta(hours=1))
    queue, marks = RecordingQueue(), Marks({asked})
    maps = mapper(sessions, FakeDetector(), queue, waiting=[], marks=marks)
    assert maps.recover_stale() >= 3  # the shared database may hold other tests' stale maps too
    assert stored(sessions, dead_idle).region_map_state == "DEFERRED"
    assert queue.maps == [(asked, True)]
    assert (reported, stored(sessions, reported).owner_id) in queue.report_maps
    assert maps.run(asked) == "ready" and stored(sessions, asked).region_map_attempts == 1


def test_a_map_interrupted_too_often_fails_with_a_reason(sessions) -> None:
    image_id = analysed_image(sessions)
    with unit_of_work(sessions) as session:
        session.execute(update(Analysis).where(Analysis.image_id == image_id).values(region_map_attempts=3,
                                                                                    region_map_state="PENDING"))
    assert mapper(sessions, FakeDetector(), RecordingQueue(), waiting=[]).run(image_id) == "failed"
    row = stored(sessions, image_id)
    assert row.region_map_state == "FAILED" and "interrupted too many times" in row.region_map["reason"]


# -- the maps of other frames of an animation or clip ------------------------------------------------------
class TextureDetector(FakeDetector):
    """Scores a region by what it shows: 0.9 where the picture varies, 0.1 where it is flat."""

    def score_regions(self, rgb: Any, boxes: list[tuple[int, int, int, int]], *,
                      regions: int | None = None) -> list[float]:
        self.scored += boxes
        return [0.9 if np.asarray(rgb.crop(box), np.float32).std() > 10 else 0.1 for box in boxes]


def analysed_clip(sessions: sessionmaker[Session]) -> tuple[str, Principal]:
    """A judged 2-s clip (2 frames a second, 384x256): frames 0-1 flat grey, 2-3 textured; its timeline read
    frames 0 and 2."""
    image_id, owner = new_id(), new_id()
    flat, textured = np.full((256, 384, 3), 128, np.uint8), np.asarray(images.picture(384, 256, seed=11))
    data = videos.clip("mp4-h264", fps=2, pictures=[flat, flat, textured, textured], crf=4)
    verdict = Verdict(label=Label.REAL, prob_ai=0.3, confidence=0.7, band=Band.MEDIUM, model_version="m-1",
                      image_facts=ImageFacts("MP4", 384, 256, len(data)))
    frames = [{"index": i, "time_ms": i * 500, "prob_ai": 0.3, "label": "REAL", "scene_cut": i == 2} for i in (0, 2)]
    with unit_of_work(sessions) as session:
        session.add(User(id=owner, username=f"u{owner[:12]}", email=f"{owner}@example.test", display_name="Ada",
                         is_service=False, roles=[UserRole(role_name="USER")]))
        session.flush()
        session.add(Image(id=image_id, owner_id=owner, filename="clip.mp4", content_type="video/mp4",
                          size_bytes=len(data), width=384, height=256, sha256=hashlib.sha256(data).hexdigest()))
        session.flush()
        SqlBlobStore().put(session, f"image/{image_id}", data)
        row = Analysis(image_id=image_id, owner_id=owner, filename="clip.mp4", state="SUCCEEDED", label="REAL",
                       timeline={"media_kind": "VIDEO", "duration_ms": 2000, "frames": frames})
        start_region_map(row, verdict)
        session.add(row)
    return image_id, Principal(user_id=owner, roles=frozenset({"USER"}))


def frame_map(sessions: sessionmaker[Session], image_id: str, frame: int) -> FrameRegionMap | None:
    with sessions() as session:
        row = session.get(FrameRegionMap, (image_id, frame))
        if row is not None:
            session.expunge(row)
        return row


def not_ready(maps: RegionMaps, principal: Principal, image_id: str, frame: int | None) -> FailedPrecondition:
    with pytest.raises(FailedPrecondition) as refused:
        maps.picture(principal, image_id, 0, frame)
    assert refused.value.reason == "REGION_MAP_NOT_READY" and refused.value.retry_after_seconds == 1.0
    return refused.value


def test_a_later_frames_map_is_opened_when_asked_for_made_from_that_frame_and_served_with_its_time(
        sessions) -> None:
    image_id, principal = analysed_clip(sessions)
    queue, marks = RecordingQueue(), Marks()
    maps = mapper(sessions, TextureDetector(), queue, waiting=[], marks=marks)
    assert "frame 2 of image" in not_ready(maps, principal, image_id, 2).message
    not_ready(maps, principal, image_id, 2)  # polling again sends nothing more
    opened = frame_map(sessions, image_id, 2)
    assert opened is not None and opened.region_map_state == "PENDING"
    assert queue.frame_maps == [(image_id, 2)] and queue.maps == []  # the image's own map is not touched
    assert stored(sessions, image_id).region_map_state == "DEFERRED"

    assert maps.run(image_id, frame=2) == "ready" and not marks.marked(f"{image_id}:frame:2")
    assert maps.run(image_id, frame=2) == "skipped"  # a redelivered task finds nothing to do
    later = maps.picture(principal, image_id, 256, 2)
    assert later.view.state == "READY" and {r.prob_ai for r in later.view.regions} == {0.9}  # textured
    assert later.frame == {"index": 2, "time_ms": 1000, "prob_ai": 0.3, "label": "REAL", "scene_cut": True}
    assert PILImage.open(io.BytesIO(later.png)).format == "PNG"

    not_ready(maps, principal, image_id, None)  # the first frame: the image's own map, as before
    assert queue.maps == [(image_id, True)] and maps.run(image_id) == "ready"
    first = maps.picture(principal, image_id, 256, 0)
    assert {r.prob_ai for r in first.view.regions} == {0.1} and first.frame is not None  # flat grey
    assert first.frame["index"] == 0 and maps.picture(principal, image_id, 256, None).png == first.png
    assert first.png != later.png


def test_frame_index_is_checked_against_the_timeline_and_a_still_image_has_none(sessions) -> None:
    clip_id, principal = analysed_clip(sessions)
    maps = mapper(sessions, TextureDetector(), RecordingQueue(), waiting=[])
    with pytest.raises(InvalidInput) as unread:
        maps.picture(principal, clip_id, 0, 1)
    assert unread.value.reason == "FRAME_NOT_ANALYSED" and unread.value.metadata["analysed_frames"] == "0,2"
    with pytest.raises(InvalidInput) as negative:
        maps.picture(principal, clip_id, 0, -2)
    assert negative.value.reason == "INVALID_FRAME_INDEX"
    still_id = analysed_image(sessions)
    owner = Principal(user_id=stored(sessions, still_id).owner_id, roles=frozenset({"USER"}))
    with pytest.raises(InvalidInput) as still:
        maps.picture(owner, still_id, 0, 0)
    assert still.value.reason == "NOT_A_MOVING_IMAGE" and frame_map(sessions, clip_id, 1) is None
    stranger = Principal(user_id=new_id(), roles=frozenset({"USER"}))
    with pytest.raises(NotFound):  # existence is not leaked, whatever the frame
        maps.picture(stranger, clip_id, 0, 1)


def test_before_the_verdict_any_frame_is_not_ready_yet(sessions) -> None:
    image_id, principal = analysed_clip(sessions)
    with unit_of_work(sessions) as session:
        session.execute(update(Analysis).where(Analysis.image_id == image_id).values(
            state="RUNNING", region_map_state="", timeline=None))
    queue = RecordingQueue()
    maps = mapper(sessions, TextureDetector(), queue, waiting=[])
    assert "its analysis has not finished" in not_ready(maps, principal, image_id, 2).message
    assert queue.frame_maps == [] and frame_map(sessions, image_id, 2) is None


def test_stale_frame_maps_are_queued_again_when_asked_for_and_deferred_otherwise(sessions) -> None:
    asked_id, principal = analysed_clip(sessions)
    idle_id, other = analysed_clip(sessions)
    queue, marks = RecordingQueue(), Marks()
    maps = mapper(sessions, TextureDetector(), queue, waiting=[], marks=marks)
    not_ready(maps, principal, asked_id, 2)
    not_ready(maps, other, idle_id, 2)
    marks.clear(f"{idle_id}:frame:2")  # its asker went away long ago
    with unit_of_work(sessions) as session:  # both workers died mid-way an hour ago
        session.execute(update(FrameRegionMap).where(FrameRegionMap.image_id.in_([asked_id, idle_id])).values(
            region_map_state="RUNNING", region_map_attempts=1, region_map_update_time=utcnow() - timedelta(hours=1)))
    queue.frame_maps.clear()
    assert maps.recover_stale() >= 2
    assert queue.frame_maps == [(asked_id, 2)]
    assert frame_map(sessions, idle_id, 2).region_map_state == "DEFERRED"  # type: ignore[union-attr]
    assert frame_map(sessions, asked_id, 2).region_map_state == "PENDING"  # type: ignore[union-attr]
    maps.recover_stale()
    assert queue.frame_maps == [(asked_id, 2)]  # touched when sent: not sent again at once
    assert maps.run(asked_id, frame=2) == "ready"
    assert frame_map(sessions, asked_id, 2).region_map_attempts == 2  # type: ignore[union-attr]
    not_ready(maps, other, idle_id, 2)  # asked for again: queued at once
    assert queue.frame_maps[-1] == (idle_id, 2)


def test_deleting_the_image_deletes_its_frame_maps(sessions) -> None:
    image_id, principal = analysed_clip(sessions)
    maps = mapper(sessions, TextureDetector(), RecordingQueue(), waiting=[])
    not_ready(maps, principal, image_id, 2)
    assert frame_map(sessions, image_id, 2) is not None
    with unit_of_work(sessions) as session:  # as IngestionService.delete_image does: the rest cascades
        session.delete(session.get(Image, image_id))
    assert frame_map(sessions, image_id, 2) is None
    assert maps.run(image_id, frame=2) == "skipped"
