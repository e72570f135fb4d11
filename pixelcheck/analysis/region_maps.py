"""Region maps: a worker scores every region of an image with the same pixel model, when someone needs it.

The map is evidence for people, not part of the verdict, so it never delays one and never piles up. A fresh
verdict leaves its map DEFERRED: nothing is queued. A map is made when it is needed: GetRegionMap (and so
the CLI's --map) requests it at the broker's first priority, ahead of every account's backlog; an
automatic report queues it in the fair queue as its owner's work. Otherwise a worker makes one only while
the broker is empty (idle_map_candidate), at the last priority, and hands it back (DEFERRED again, the
regions done kept) as soon as other work waits: unrequested map work is at most one task in the broker
(plus one running per worker), and never in front of a verdict. Stored states: DEFERRED (not queued; shown
as PENDING), PENDING (queued), RUNNING (claimed by a worker; shown as PENDING), READY, UNAVAILABLE (image
too small), FAILED.

A frame of an animation or clip other than the first the timeline read gets a map of its own when somebody asks
for it (GetRegionMap's frame_index): a FrameRegionMap row with the same states, made by the same task, recovered
the same way; a MapKey names which map. Frame maps are made on request only, never by idle workers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.analysis.detector import Detector, ImageUnreadable
from pixelcheck.analysis.detector.animation import first_picture, frame_picture
from pixelcheck.analysis.detector.regions import (
    RegionGrid,
    RegionMapView,
    RegionScore,
    disagreement,
    region_grid,
    unavailable_reason,
)
from pixelcheck.analysis.detector.verdict import Verdict
from pixelcheck.analysis.frame_choice import FrameChoice, check_frame_index, choose_frame
from pixelcheck.analysis.models import Analysis, FrameRegionMap
from pixelcheck.analysis.region_map_ports import MapKey, MapQueue, MapRequests
from pixelcheck.blobs import BlobStore
from pixelcheck.db import unit_of_work, utcnow
from pixelcheck.errors import FailedPrecondition, InvalidInput, NotFound
from pixelcheck.iam.principal import Principal
from pixelcheck.ids import check_id
from pixelcheck.ingestion.stored_media import stored_source

log = logging.getLogger("pixelcheck.analysis.region_maps")

DEFERRED, PENDING, RUNNING = "DEFERRED", "PENDING", "RUNNING"
READY, UNAVAILABLE, FAILED = "READY", "UNAVAILABLE", "FAILED"
DEFAULT_PICTURE_SIDE, MIN_PICTURE_SIDE, MAX_PICTURE_SIDE = 800, 128, 1600
# Regions an idle map scores between two looks at the broker: a verdict that arrives waits for at most this
# many (one crop of at most 128 px each, ~5 ms with the Lite0 model), not for a whole row of the grid.
STEP_REGIONS = 2


@dataclass(frozen=True)
class RegionMapPicture:
    """What GetRegionMap answers: the PNG, its size, the map it shows and, for an animation or clip, the
    timeline's reading of the frame mapped (see FrameChoice.frame)."""

    png: bytes
    width: int
    height: int
    view: RegionMapView
    frame: dict[str, Any] | None = None


def region_map_columns(verdict: Verdict, *, needed: bool = False) -> tuple[dict[str, Any], bool]:
    """The region-map columns of a freshly judged analysis, as values for an UPDATE, and whether its map must
    be queued now (`needed`: an automatic report waits for it); otherwise it is left DEFERRED."""
    facts = verdict.image_facts
    grid = region_grid(facts.width, facts.height) if facts else None
    columns: dict[str, Any] = {"region_map_attempts": 0, "region_map_update_time": utcnow()}
    if grid is None:
        reason = unavailable_reason(facts.width, facts.height) if facts else "The image's size is unknown."
        return {**columns, "region_map_state": UNAVAILABLE, "region_map": {"reason": reason}}, False
    document = {"rows": grid.rows, "columns": grid.columns, "boxes": [list(b) for b in grid.boxes],
                "probs": [], "disagreement": "", "reason": "", "work_ms": 0.0}
    return {**columns, "region_map_state": PENDING if needed else DEFERRED, "region_map": document}, needed


def start_region_map(row: Analysis, verdict: Verdict, *, needed: bool = False) -> bool:
    """Set up the map of a freshly judged analysis row; True when it must be queued now."""
    columns, pending = region_map_columns(verdict, needed=needed)
    for name, value in columns.items():
        setattr(row, name, value)
    return pending


def region_map_view(row: Analysis | FrameRegionMap) -> RegionMapView:
    """The stored map of an analysis in plain values."""
    doc: dict[str, Any] = dict(row.region_map or {})
    state = PENDING if row.region_map_state in (DEFERRED, RUNNING) else row.region_map_state
    rows, columns = int(doc.get("rows", 0)), int(doc.get("columns", 0))
    probs = [float(p) for p in doc.get("probs", [])]
    boxes = [tuple(int(v) for v in b) for b in doc.get("boxes", [])]
    regions = tuple(RegionScore(i // columns, i % columns, (b[0], b[1], b[2], b[3]), round(p, 4))
                    for i, (b, p) in enumerate(zip(boxes, probs, strict=False))) if state == READY else ()
    progress = len(probs) / len(boxes) if boxes else 0.0
    return RegionMapView(state=state, rows=rows, columns=columns, regions=regions,
                         disagreement=str(doc.get("disagreement", "")), reason=str(doc.get("reason", "")),
                         progress=1.0 if state == READY else round(progress, 4))


def _grid_of(doc: dict[str, Any]) -> RegionGrid:
    boxes = tuple((int(b[0]), int(b[1]), int(b[2]), int(b[3])) for b in doc["boxes"])
    return RegionGrid(int(doc["rows"]), int(doc["columns"]), boxes)


class RegionMaps:
    """Scoring region maps on a worker, re-finding lost ones, and reading them back for the API."""

    def __init__(self, *, sessions: sessionmaker[Session], read_sessions: sessionmaker[Session], blobs: BlobStore,
                 detector: Callable[[], Detector], queue: MapQueue, others_waiting: Callable[[], bool],
                 broker_empty: Callable[[], bool], requests: MapRequests, stale_after: timedelta, max_attempts: int,
                 idle_max_age: timedelta = timedelta(days=1), spool_dir: str = "") -> None:
        self._sessions = sessions
        self._spool_dir = spool_dir  # where a clip is copied to read its first frame
        self._read = read_sessions
        self._blobs = blobs
        self._detector = detector
        self._queue = queue
        self._others_waiting = others_waiting  # work an idle map yields to
        self._broker_empty = broker_empty  # nothing queued at all, idle-time maps included
        self._requests = requests
        self._stale_after = stale_after
        self._max_attempts = max_attempts
        self._idle_max_age = idle_max_age

    # -- worker ---------------------------------------------------------------------------------
    def run(self, image_id: str, *, idle: bool = False, frame: int | None = None) -> str:
        """Score the rest of the map (the image's own, or with `frame` that frame's). Returns "ready", "yielded"
        (an idle map handed back to waiting work: DEFERRED again, not re-enqueued), "failed" or "skipped"
        (finished, deleted, or being scored elsewhere). A needed map (idle=False) runs to the end."""
        key = MapKey(image_id, frame)
        detector = self._detector()
        claim = self._claim(key, needed=not idle)
        if claim is None:
            return "skipped"
        attempt, doc = claim
        if attempt > self._max_attempts:
            return self._finish(key, attempt, FAILED, {**doc, "reason": "The region map was interrupted too "
                                                       "many times."})
        with stored_source(self._blobs, self._read, image_id, self._spool_dir) as data:  # a clip: a local copy
            if data is None:
                return self._finish(key, attempt, FAILED, {**doc, "reason": "The image's bytes are missing."})
            started = time.perf_counter()
            try:
                rgb = first_picture(data) if frame is None else frame_picture(data, frame)
            except ImageUnreadable as error:
                return self._finish(key, attempt, FAILED, {**doc, "reason": str(error)})
        grid, probs = _grid_of(doc), [float(p) for p in doc.get("probs", [])]
        try:
            # A needed map scores every region in one call (batched by crop size); an idle one a few at a time.
            step = STEP_REGIONS if idle else len(grid.boxes)
            for start in range(len(probs), len(grid.boxes), step):
                probs += detector.score_regions(rgb, list(grid.boxes[start : start + step]),
                                                regions=len(grid.boxes))
                if idle and len(probs) < len(grid.boxes) and self._waiting():
                    return self._hand_back(key, attempt, doc, probs, started)
        except Exception:  # a model bug is permanent for these bytes: fail with a reason, do not loop
            log.exception("region map of %s failed", key)
            return self._finish(key, attempt, FAILED, {**doc, "reason": "The pixel model could not score "
                                                       "the regions of this image."})
        work_ms = float(doc.get("work_ms", 0.0)) + (time.perf_counter() - started) * 1000
        return self._finish(key, attempt, READY, {**doc, "probs": [round(p, 4) for p in probs],
                                                  "disagreement": disagreement(grid, probs),
                                                  "work_ms": round(work_ms, 1)})

    def _waiting(self) -> bool:
        try:
            return self._others_waiting()
        except Exception:  # an unreachable broker must not stop the map
            return False

    def _claim(self, key: MapKey, *, needed: bool) -> tuple[int, dict[str, Any]] | None:
        """Take the map for this run. A needed run (requested, or for a report) also takes a DEFERRED map: it
        exists because somebody asked, whatever an idle run did to the state since the task was sent."""
        now = utcnow()
        claimable = (PENDING, DEFERRED) if needed else (PENDING,)
        m = key.model
        with unit_of_work(self._sessions) as session:
            result = session.execute(
                update(m)
                .where(*key.where(),
                       or_(m.region_map_state.in_(claimable),
                           (m.region_map_state == RUNNING) & (m.region_map_update_time < now - self._stale_after)))
                .values({m.region_map_state: RUNNING, m.region_map_attempts: m.region_map_attempts + 1,
                         m.region_map_update_time: now})
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = key.load(session)
            assert row is not None
            return row.region_map_attempts, dict(row.region_map or {})

    def _store(self, key: MapKey, attempt: int, state: str, doc: dict[str, Any], *,
               attempts: int | None = None) -> Analysis | FrameRegionMap | None:
        """Write the map while this run still holds it; the row (detached) when written, else None."""
        with unit_of_work(self._sessions) as session:
            row = key.load(session, for_update=True)
            if row is None or row.region_map_attempts != attempt or row.region_map_state != RUNNING:
                return None
            row.region_map_state, row.region_map, row.region_map_update_time = state, doc, utcnow()
            if attempts is not None:
                row.region_map_attempts = attempts
            session.flush()
            session.expunge(row)
            return row

    def _hand_back(self, key: MapKey, attempt: int, doc: dict[str, Any], probs: list[float],
                   started: float) -> str:
        work_ms = float(doc.get("work_ms", 0.0)) + (time.perf_counter() - started) * 1000
        # Handing back is not a failed attempt: the count goes back to what it was before this claim. The map
        # waits DEFERRED, its regions kept, for a request or the next idle moment (nothing is re-enqueued);
        # one asked for while it ran goes back PENDING and to the front of the queue after all.
        asked = self._requests.marked(key.mark)
        saved = self._store(key, attempt, PENDING if asked else DEFERRED,
                            {**doc, "probs": [round(p, 4) for p in probs], "work_ms": round(work_ms, 1)},
                            attempts=attempt - 1)
        if saved is None:
            return "skipped"
        if asked:
            self._send(key, requested=True)
        return "yielded"

    def _finish(self, key: MapKey, attempt: int, state: str, doc: dict[str, Any]) -> str:
        row = self._store(key, attempt, state, doc)
        if row is None:
            return "skipped"
        self._forget_request(key)
        if isinstance(row, Analysis) and row.report_id:  # the automatic report waited for the map (building
            try:                                            # it twice is harmless)
                self._queue.build_report(row.report_id)
            except Exception:
                log.warning("could not enqueue report %s", row.report_id, exc_info=True)
        return "ready" if state == READY else "failed"

    def recover_stale(self, limit: int = 500) -> int:
        """Maps left PENDING or RUNNING longer than the stale period (a lost task or a killed worker): queued
        again when needed (a report waits, or someone asked), else DEFERRED. Returns how many."""
        cutoff = utcnow() - self._stale_after
        with unit_of_work(self._sessions) as session:
            rows = session.execute(
                select(Analysis.image_id, Analysis.owner_id, Analysis.report_id)
                .where(Analysis.region_map_state.in_((PENDING, RUNNING)), Analysis.region_map_update_time < cutoff)
                .order_by(Analysis.region_map_update_time).limit(limit)).all()
            needed = [(i, o, r) for i, o, r in rows if r or self._requests.marked(i)]
            needed_ids = {i for i, _, _ in needed}
            unneeded = [i for i, _, _ in rows if i not in needed_ids]
            if needed:  # touch the queued ones so the next pass does not enqueue them again at once
                session.execute(update(Analysis).where(Analysis.image_id.in_([i for i, _, _ in needed]),
                                                       Analysis.region_map_state == PENDING)
                                .values(region_map_update_time=utcnow()).execution_options(synchronize_session=False))
            if unneeded:
                session.execute(update(Analysis).where(Analysis.image_id.in_(unneeded),
                                                       Analysis.region_map_state.in_((PENDING, RUNNING)))
                                .values(region_map_state=DEFERRED, region_map_update_time=utcnow())
                                .execution_options(synchronize_session=False))
        for image_id, owner_id, report_id in needed:
            if report_id:
                self._queue.map_for_report(image_id, owner_id)
            else:
                self._send(MapKey(image_id), requested=True)
        return len(rows) + self._recover_stale_frames(cutoff, limit)

    def _recover_stale_frames(self, cutoff: Any, limit: int) -> int:
        """recover_stale for frame maps: queued again when someone asked lately, else DEFERRED (until asked)."""
        with unit_of_work(self._sessions) as session:
            rows = session.execute(
                select(FrameRegionMap.image_id, FrameRegionMap.frame_index)
                .where(FrameRegionMap.region_map_state.in_((PENDING, RUNNING)),
                       FrameRegionMap.region_map_update_time < cutoff)
                .order_by(FrameRegionMap.region_map_update_time).limit(limit)).all()
            keys = [MapKey(i, f) for i, f in rows]
            needed = [k for k in keys if self._requests.marked(k.mark)]
            for key in keys:  # a handful at most: frame maps are made on request only
                # Queued again (and touched, so that the next pass does not send it again at once), or left to wait.
                session.execute(update(FrameRegionMap)
                                .where(*key.where(), FrameRegionMap.region_map_state.in_((PENDING, RUNNING)))
                                .values({FrameRegionMap.region_map_state: PENDING if key in needed else DEFERRED,
                                         FrameRegionMap.region_map_update_time: utcnow()})
                                .execution_options(synchronize_session=False))
        for key in needed:
            self._send(key, requested=True)
        return len(keys)

    def idle_map_candidate(self) -> str | None:
        """When the broker is empty, take the newest DEFERRED map (younger than the idle age limit) and queue it
        at the last priority; its image id, or None (busy, or nothing to map). Frame maps are never taken."""
        if not self._idle():
            return None
        since = utcnow() - self._idle_max_age
        with unit_of_work(self._sessions) as session:
            image_id = session.scalar(
                select(Analysis.image_id)
                .where(Analysis.region_map_state == DEFERRED, Analysis.region_map_update_time >= since)
                .order_by(Analysis.region_map_update_time.desc()).limit(1))
            if image_id is None:
                return None
            taken = session.execute(update(Analysis).where(Analysis.image_id == image_id,
                                                           Analysis.region_map_state == DEFERRED)
                                    .values(region_map_state=PENDING, region_map_update_time=utcnow())
                                    .execution_options(synchronize_session=False))
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return None  # another worker took it
        self._send(MapKey(image_id), requested=False)
        return image_id

    def _idle(self) -> bool:
        """Nothing queued, not even another idle-time map: at most one of them waits at any time."""
        try:
            return self._broker_empty()
        except Exception:  # an unreachable broker: do not add unrequested work to it
            return False

    def _send(self, key: MapKey, *, requested: bool) -> None:
        try:
            if key.frame is None:
                self._queue.map_regions(key.image_id, requested=requested)
            else:
                self._queue.map_regions(key.image_id, requested=requested, frame_index=key.frame)
        except Exception:  # the reconciler finds the PENDING map again
            log.warning("could not enqueue the region map of %s", key, exc_info=True)

    def _forget_request(self, key: MapKey) -> None:
        try:
            self._requests.clear(key.mark)
        except Exception:  # the mark expires by itself
            log.debug("could not clear the request mark of %s", key, exc_info=True)

    def request(self, image_id: str, frame: int | None = None) -> None:
        """Somebody needs this map (the image's own, or with `frame` that frame's, once opened): queue it ahead of
        every backlog (once per stale period, however often they poll). A DEFERRED map becomes PENDING first, and
        is then always sent: no task that would make it is left in the broker, even when an earlier request is
        still marked (an idle run handed it back since)."""
        key = MapKey(image_id, frame)
        m = key.model
        with unit_of_work(self._sessions) as session:
            taken = session.execute(update(m).where(*key.where(), m.region_map_state == DEFERRED)
                                    .values({m.region_map_state: PENDING, m.region_map_update_time: utcnow()})
                                    .execution_options(synchronize_session=False))
        try:
            newly_marked = self._requests.mark(key.mark)
        except Exception:  # an unreachable Redis: the map stays PENDING, unmarked, and the next poll sends it
            log.warning("could not mark the region map of %s as requested", key, exc_info=True)
            return
        if newly_marked or taken.rowcount == 1:  # type: ignore[attr-defined]
            self._send(key, requested=True)

    def _open_frame_map(self, image_id: str, frame: int, image_map: dict[str, Any]) -> None:
        """A frame's map, DEFERRED, on the grid of the image's own map (every frame has the image's size)."""
        document = {"rows": image_map["rows"], "columns": image_map["columns"], "boxes": image_map["boxes"],
                    "probs": [], "disagreement": "", "reason": "", "work_ms": 0.0}
        try:
            with unit_of_work(self._sessions) as session:
                session.add(FrameRegionMap(image_id=image_id, frame_index=frame, region_map_state=DEFERRED,
                                           region_map=document, region_map_attempts=0,
                                           region_map_update_time=utcnow()))
        except IntegrityError:  # another poll opened it first (or the image was deleted meanwhile)
            log.debug("the region map of frame %s of image %s is already open", frame, image_id)

    # -- server ---------------------------------------------------------------------------------
    def picture(self, principal: Principal, image_id: str, max_side: int,
                frame_index: int | None = None) -> RegionMapPicture:
        """The region-map PNG of an image (of the frame `frame_index` of an animation or clip; None: the first)
        and the map it shows.

        Raises NotFound unless the caller owns the image or is ADMIN; InvalidInput for a bad max_side or
        frame_index (see frame_choice.choose_frame); FailedPrecondition while the map is not READY
        (REGION_MAP_NOT_READY; also before the verdict, when the frames are not known yet) or when there is none
        (REGION_MAP_UNAVAILABLE).
        """
        from pixelcheck.analysis.region_map_image import render_region_map

        check_id(image_id, "image_id")
        side = max_side or DEFAULT_PICTURE_SIDE
        if not MIN_PICTURE_SIDE <= side <= MAX_PICTURE_SIDE:
            raise InvalidInput(f"max_side must be 0 or between {MIN_PICTURE_SIDE} and {MAX_PICTURE_SIDE}",
                               reason="INVALID_MAX_SIDE", violations=[("max_side", "out of range")])
        check_frame_index(frame_index)
        opened: dict[str, Any] | None = None  # the image's own map, when a frame's map must be opened on its grid
        with unit_of_work(self._read) as session:
            row = session.scalar(select(Analysis).where(Analysis.image_id == image_id))
            if row is None or not (row.owner_id == principal.user_id or principal.is_admin):
                raise NotFound(f"No analysis for image {image_id}", reason="IMAGE_NOT_FOUND")
            # Before the verdict the frames are unknown: the image's own map answers NOT_READY, as it always did.
            choice = choose_frame(image_id, row.timeline, frame_index) if row.region_map_state else FrameChoice()
            frame = choice.index if choice.own_map else None  # None: the image's own map
            map_row: Analysis | FrameRegionMap | None = row
            if frame is not None and row.region_map_state != UNAVAILABLE:  # too small: so is every frame
                map_row = session.get(FrameRegionMap, (image_id, frame))
            if map_row is None:  # first asked for: opened below, on the grid of the image's own map
                opened = dict(row.region_map or {})
                view = RegionMapView(state=PENDING, rows=int(opened["rows"]), columns=int(opened["columns"]))
            else:
                view = region_map_view(map_row)
            what = f"image {image_id}" if frame is None else f"frame {frame} of image {image_id}"
            if view.state in (UNAVAILABLE, FAILED):
                raise FailedPrecondition(f"Image {image_id} has no region map: {view.reason}" if frame is None
                                         else f"The region map of {what} cannot be made: {view.reason}",
                                         reason="REGION_MAP_UNAVAILABLE",
                                         metadata={"image_id": image_id, "state": view.state})
            needs_request = map_row is None or map_row.region_map_state in (DEFERRED, PENDING, RUNNING)
        if view.state != READY:
            if opened is not None and frame is not None:
                self._open_frame_map(image_id, frame, opened)
            if needs_request:
                self.request(image_id, frame)
            why = "it is being made now" if needs_request else "its analysis has not finished"
            raise FailedPrecondition(
                f"The region map of {what} is not ready yet ({view.progress:.0%} scored; {why}); "
                "try again in a few seconds", reason="REGION_MAP_NOT_READY",
                retry_after_seconds=1.0, metadata={"image_id": image_id, "state": view.state or "NONE"})
        with stored_source(self._blobs, self._read, image_id, self._spool_dir) as data:
            if data is None:
                raise FailedPrecondition(f"The bytes of image {image_id} are missing", reason="IMAGE_BYTES_MISSING")
            png, width, height = render_region_map(data, view, side, frame=frame)
        return RegionMapPicture(png, width, height, view, choice.frame)
