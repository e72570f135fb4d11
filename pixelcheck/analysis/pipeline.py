"""Runs one analysis on a worker: claim it, run the detector stage by stage, store the verdict once.

Exactly-once results under redelivery: a run first claims the row (QUEUED, or RUNNING but stale) with a
compare-and-set that bumps `attempts`, and saves only while it still holds that attempt.

Database writes are the ones a client reads: the claim (RUNNING) and the outcome (SUCCEEDED or FAILED,
with its audit event), one short transaction each. The stages in between (PROVENANCE ... SAVING) go to the
progress bus only: WatchAnalysis reads the snapshot (RUNNING) from the database and every later stage from Redis.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from billiard.exceptions import SoftTimeLimitExceeded  # what a Celery worker raises at a task's soft time limit
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.analysis.detector import Detector, ImageUnreadable, Stage
from pixelcheck.analysis.models import Analysis
from pixelcheck.analysis.progress import (
    STAGE_MESSAGES,
    STAGE_PROGRESS,
    ProgressEvent,
    ProgressPublisher,
    frames_message,
)
from pixelcheck.analysis.records import verdict_columns, webhook_media
from pixelcheck.analysis.region_maps import region_map_columns
from pixelcheck.blobs import BlobStore
from pixelcheck.db import unit_of_work, utcnow
from pixelcheck.errors import Unavailable
from pixelcheck.ingestion.models import Image
from pixelcheck.ingestion.stored_media import stored_source
from pixelcheck.tracing import stage_span
from pixelcheck.webhooks.service import link_free

if TYPE_CHECKING:
    from pixelcheck.webhooks.service import EventOutbox

HAND_BACK_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)  # seconds between tries to hand back a claim (15.5 s in all)
TIME_LIMIT_REASON = ("The analysis ran past the worker's time limit and was stopped (video_time_limit_seconds for "
                     "a clip, task_time_limit_seconds for a picture); a shorter clip, or one at a lower resolution, "
                     "can be analysed")
log = logging.getLogger("pixelcheck.analysis")


class AutomaticReports(Protocol):
    def add_automatic_report(self, session: Session, *, owner_id: str, image_id: str) -> str | None: ...


class OutcomeAudit(Protocol):
    def record_in(self, session: Session, action: str, *, actor_id: str, target: str,
                  payload: dict[str, Any]) -> None: ...


class ReportQueue(Protocol):
    def build_report(self, report_id: str) -> None: ...

    def map_for_report(self, image_id: str, owner_id: str) -> None: ...


_STAGE_SPANS = {"DECODING": "analysis.decode", "PROVENANCE": "analysis.provenance",
                "PIXEL_MODEL": "analysis.pixel_model", "FUSION": "analysis.fusion", "SAVING": "analysis.save"}


class _StageClock:
    """Times each stage of one run (for the stored breakdown and the stage-duration metric) and traces it:
    one span per stage, current while the stage runs, so its database calls nest under it."""

    def __init__(self, started: float, observe: Callable[[str, float], None] | None, image_id: str) -> None:
        self.timings: dict[str, float] = {}
        self._stage, self._at, self._observe = "DECODING", started, observe
        self._image_id = image_id
        self._span: ExitStack | None = None
        self._open_span("DECODING")

    def enter(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[self._stage] = round((now - self._at) * 1000, 2)
        if self._observe is not None:
            self._observe(self._stage, now - self._at)
        self._stage, self._at = stage, now
        self._open_span(stage)

    def _open_span(self, stage: str) -> None:
        if stage not in _STAGE_SPANS:
            return  # DONE: the save span lasts until the run ends (commit, report, progress event)
        self.close()
        self._span = ExitStack()
        self._span.enter_context(stage_span(_STAGE_SPANS[stage], {"pixelcheck.image_id": self._image_id,
                                                                  "pixelcheck.stage": stage}))

    def close(self) -> None:
        """End the open stage's span (idempotent)."""
        if self._span is not None:
            span, self._span = self._span, None
            span.close()


class AnalysisPipeline:
    def __init__(self, *, sessions: sessionmaker[Session], read_sessions: sessionmaker[Session], blobs: BlobStore,
                 detector: Callable[[], Detector],
                 publisher: ProgressPublisher, audit: OutcomeAudit, reports: AutomaticReports | None,
                 report_queue: ReportQueue, stale_after: timedelta, max_attempts: int,
                 stage_observer: Callable[[str, float], None] | None = None,
                 webhooks: EventOutbox | None = None, spool_dir: str = "") -> None:
        self._sessions = sessions
        self._spool_dir = spool_dir  # where a clip is copied to be decoded
        self._read_sessions = read_sessions
        self._blobs = blobs
        self._detector = detector
        self._publisher = publisher
        self._audit = audit
        self._reports = reports
        self._report_queue = report_queue
        self._stale_after = stale_after
        self._max_attempts = max_attempts
        self._observe_stage = stage_observer
        self._webhooks = webhooks

    def run(self, image_id: str) -> str:
        """Analyse the image once. Returns what happened: "succeeded", "failed", "skipped" (finished, deleted
        or claimed by another run). Raises pixelcheck.errors.Unavailable on transient database trouble."""
        detector = self._detector()  # before claiming: a worker without its model leaves the analysis QUEUED
        claimed = self._claim(image_id)
        if claimed is None:
            return "skipped"
        attempt, owner_id = claimed
        started = time.perf_counter()
        clock = _StageClock(started, self._observe_stage, image_id)
        try:
            return self._analyse(image_id, attempt, owner_id, detector, clock, started)
        except Unavailable:
            self._hand_back(image_id, attempt)
            raise
        finally:
            clock.close()

    def _hand_back(self, image_id: str, attempt: int, delays: tuple[float, ...] = HAND_BACK_DELAYS) -> None:
        """After the database (or blob store) failed mid-run, make the claim QUEUED again, not counting the
        attempt, so that the retry claims it as soon as the database is back; left RUNNING it would wait for
        the stale period. Tries while the outage lasts (delays), then leaves it to the reconciler."""
        for delay in (0.0, *delays):
            time.sleep(delay)
            try:
                with unit_of_work(self._sessions) as session:
                    session.execute(
                        update(Analysis)
                        .where(Analysis.image_id == image_id, Analysis.attempts == attempt,
                               Analysis.state == "RUNNING")
                        .values(state="QUEUED", stage="QUEUED", progress=0.0, attempts=attempt - 1,
                                update_time=utcnow())
                        .execution_options(synchronize_session=False))
                return
            except Unavailable:
                continue
        log.warning("could not hand back analysis %s after the database failed; the reconciler takes it over "
                    "after the stale period", image_id)

    def _analyse(self, image_id: str, attempt: int, owner_id: str, detector: Detector, clock: _StageClock,
                 started: float) -> str:
        timings = clock.timings

        def enter(stage: Stage | str) -> None:
            clock.enter(str(stage))
            self._publish(image_id, "RUNNING", str(stage), attempt)

        # a clip as a local temporary file (removed once read), a still in memory; autocommit reads
        with stored_source(self._blobs, self._read_sessions, image_id, self._spool_dir) as source:
            if source is None:
                return self._fail(image_id, attempt, "The image's bytes are missing; upload it again", started, {})
            try:
                with self._kept_alive(image_id, attempt):
                    verdict = detector.analyze(source, on_stage=enter,
                                               on_frame=lambda done, total: self._publish_frames(image_id, attempt,
                                                                                                 done, total))
            except ImageUnreadable as exc:
                return self._fail(image_id, attempt, str(exc), started, timings, detector.info)
            except SoftTimeLimitExceeded:  # the rules keep a clip within the limit; a machine far slower may not be
                return self._fail(image_id, attempt, TIME_LIMIT_REASON, started, timings, detector.info)
            except Exception:  # a detector bug is permanent for these bytes: fail with a reason, do not loop
                log.exception("detector failed on image %s", image_id)
                return self._fail(image_id, attempt, "The detector could not analyse this image; our team has "
                                  "been notified through the logs", started, timings, detector.info)
        enter("SAVING")
        duration_ms = int((time.perf_counter() - started) * 1000)
        report_id = ""
        map_columns, _ = region_map_columns(verdict)
        mapping = False  # whether an automatic report now waits for the map (else it stays DEFERRED)
        with unit_of_work(self._sessions) as session:
            clock.enter("DONE")
            now = utcnow()
            saved = session.execute(
                update(Analysis)
                .where(Analysis.image_id == image_id, Analysis.attempts == attempt, Analysis.state == "RUNNING")
                .values(state="SUCCEEDED", stage="DONE", progress=1.0, duration_ms=duration_ms,
                        stage_timings_ms=timings, finish_time=now, update_time=now, **verdict_columns(verdict),
                        **map_columns)
                .execution_options(synchronize_session=False))
            if saved.rowcount != 1:  # type: ignore[attr-defined]
                return "skipped"  # deleted meanwhile, or a newer attempt took over
            if self._reports is not None:
                report_id = self._reports.add_automatic_report(session, owner_id=owner_id, image_id=image_id) or ""
                if report_id:
                    map_columns, mapping = region_map_columns(verdict, needed=True)
                    session.execute(update(Analysis).where(Analysis.image_id == image_id)
                                    .values(report_id=report_id, **map_columns)
                                    .execution_options(synchronize_session=False))
            deliveries = self._announce(session, owner_id, image_id, "analysis.succeeded", {
                "label": verdict.label.value, "probability_ai": round(verdict.prob_ai, 4),
                "confidence": round(verdict.confidence, 4), "confidence_band": verdict.band.value,
                "model_version": verdict.model_version, "summary": link_free(verdict.summary),
                **webhook_media(verdict)})
            # In the outcome's own transaction, last (it holds the audit chain's head until the commit): the
            # result and its audit event are kept together, and before anyone hears of the result.
            self._audit.record_in(session, "analysis.succeeded", actor_id=owner_id, target=f"image:{image_id}",
                                  payload={"label": verdict.label.value, "confidence": round(verdict.confidence, 4),
                                           "model_version": verdict.model_version, "duration_ms": duration_ms})
        self._dispatch(deliveries)
        if mapping:
            self._enqueue_map(image_id, owner_id)  # the map's run builds the automatic report once it is done
        elif report_id:
            self._enqueue_report(report_id)
        self._publish(image_id, "SUCCEEDED", "DONE", attempt)
        return "succeeded"

    @contextmanager
    def _kept_alive(self, image_id: str, attempt: int) -> Iterator[None]:
        """While the detector runs, renew the claim's update_time every third of the stale period: an animation
        of thousands of frames may take longer than that, and must not look lost to the reconciler."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self._stale_after.total_seconds() / 3):
                try:
                    with unit_of_work(self._sessions) as session:
                        session.execute(update(Analysis).where(Analysis.image_id == image_id,
                                                               Analysis.attempts == attempt,
                                                               Analysis.state == "RUNNING")
                                        .values(update_time=utcnow()).execution_options(synchronize_session=False))
                except Exception:  # the next beat tries again; a claim that lapses is taken over, not lost
                    log.warning("could not renew the claim of analysis %s", image_id, exc_info=True)

        beating = threading.Thread(target=beat, name=f"claim-{image_id[:8]}", daemon=True)
        beating.start()
        try:
            yield
        finally:
            stop.set()
            beating.join(timeout=5)

    def _claim(self, image_id: str) -> tuple[int, str] | None:
        """Take the analysis for one attempt: (attempt number, owner id), or None when another run holds it
        or it is finished or gone."""
        now = utcnow()
        with unit_of_work(self._sessions) as session:
            result = session.execute(
                update(Analysis)
                .where(Analysis.image_id == image_id,
                       or_(Analysis.state == "QUEUED",
                           (Analysis.state == "RUNNING") & (Analysis.update_time < now - self._stale_after)))
                .values(state="RUNNING", stage="DECODING", progress=STAGE_PROGRESS["DECODING"],
                        attempts=Analysis.attempts + 1, update_time=now,
                        start_time=func.coalesce(Analysis.start_time, now))
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            # The row is locked by the UPDATE until the commit: nobody else changed attempts since.
            attempt, owner_id = session.execute(
                select(Analysis.attempts, Analysis.owner_id).where(Analysis.image_id == image_id)).one()
        if attempt > self._max_attempts:
            self._fail(image_id, attempt, "The analysis was interrupted too many times; upload the image again",
                       time.perf_counter(), {})
            return None
        self._publish(image_id, "RUNNING", "DECODING", attempt)
        return attempt, owner_id

    def _fail(self, image_id: str, attempt: int, reason: str, started: float, timings: dict[str, Any],
              info: Any = None) -> str:
        with unit_of_work(self._sessions) as session:
            row = session.scalar(select(Analysis).where(Analysis.image_id == image_id).with_for_update())
            if row is None or row.attempts != attempt or row.state in ("SUCCEEDED", "FAILED"):
                return "skipped"
            row.state, row.stage, row.progress = "FAILED", "DONE", 1.0
            row.failure_reason = reason
            row.duration_ms = int((time.perf_counter() - started) * 1000)
            row.stage_timings_ms = timings
            if info is not None:
                row.model_version = f"{info.name}-{info.version}"
            row.finish_time = row.update_time = utcnow()
            deliveries = self._announce(session, row.owner_id, image_id, "analysis.failed",
                                        {"failure_reason": reason})
            self._audit.record_in(session, "analysis.failed", actor_id=row.owner_id, target=f"image:{image_id}",
                                  payload={"reason": reason})
        self._dispatch(deliveries)
        self._publish(image_id, "FAILED", "DONE", attempt, message=reason)
        return "failed"

    def _announce(self, session: Session, owner_id: str, image_id: str, event_type: str,
                  verdict: dict[str, Any]) -> list[str]:
        """Webhook deliveries of the outcome, written in the outcome's own transaction (the outbox)."""
        if self._webhooks is None:
            return []
        external_id, filename = session.execute(
            select(Analysis.external_id, Analysis.filename).where(Analysis.image_id == image_id)).one()
        data = {"image_id": image_id, "external_id": external_id, "filename": filename, **verdict}
        return self._webhooks.record(session, owner_id=owner_id, event_type=event_type, subject_id=image_id,
                                     data=data)

    def _dispatch(self, delivery_ids: list[str]) -> None:
        if self._webhooks is not None and delivery_ids:
            self._webhooks.dispatch(delivery_ids)

    def _publish(self, image_id: str, state: str, stage: str, attempt: int, message: str = "") -> None:
        self._publisher.publish(ProgressEvent(
            image_id=image_id, state=state, stage=stage, progress=STAGE_PROGRESS.get(stage, 0.0),
            message=message or STAGE_MESSAGES.get(stage, ""), event_time=utcnow().isoformat(), attempt=attempt))

    def _publish_frames(self, image_id: str, attempt: int, done: int, total: int) -> None:
        """An animation's frame count read so far, as progress within the pixel-model stage."""
        low, high = STAGE_PROGRESS["PIXEL_MODEL"], STAGE_PROGRESS["FUSION"]
        progress = round(low + (high - low) * done / total, 4)
        self._publisher.publish(ProgressEvent(
            image_id=image_id, state="RUNNING", stage="PIXEL_MODEL", progress=progress,
            message=frames_message(done, total), event_time=utcnow().isoformat(), attempt=attempt))

    def _enqueue_map(self, image_id: str, owner_id: str) -> None:
        try:
            self._report_queue.map_for_report(image_id, owner_id)
        except Exception:  # the reconciler re-enqueues a map left PENDING
            log.warning("could not enqueue the region map of image %s", image_id, exc_info=True)

    def _enqueue_report(self, report_id: str) -> None:
        try:
            self._report_queue.build_report(report_id)
        except Exception:
            log.warning("could not enqueue report %s", report_id, exc_info=True)

    # -- reconciliation --------------------------------------------------------------------------
    def stale_analyses(self, limit: int = 500, *, cutoff: datetime | None = None,
                       states: tuple[str, ...] = ("QUEUED", "RUNNING")) -> list[tuple[str, str, datetime, int]]:
        """(image id, owner id, accepted, cost in the fair queue) of analyses in `states` unchanged since `cutoff`
        (default: longer than the stale period; lost by a broker or a killed worker), oldest first. The QUEUED
        ones are touched, so the next call returns the next ones."""
        cutoff = cutoff or utcnow() - self._stale_after
        with unit_of_work(self._sessions) as session:
            rows = [(i, o, at, int(cost or 1)) for i, o, at, cost in session.execute(
                select(Analysis.image_id, Analysis.owner_id, Analysis.create_time, Analysis.cost)
                .where(Analysis.state.in_(states), Analysis.update_time < cutoff)
                .order_by(Analysis.update_time).limit(limit))]
            ids = [row[0] for row in rows]
            if ids:  # touch them so the next reconciler pass does not enqueue them again at once
                session.execute(update(Analysis).where(Analysis.image_id.in_(ids), Analysis.state == "QUEUED")
                                .values(update_time=utcnow()).execution_options(synchronize_session=False))
        return rows

    def image_exists(self, image_id: str) -> bool:
        with unit_of_work(self._sessions) as session:
            return session.get(Image, image_id) is not None

