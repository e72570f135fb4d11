"""Report use cases: request, read, list and download reports; build them on a worker; the automatic hook.

A report is requested (REQUESTED), built by a Celery worker (GENERATING, then READY or FAILED) and its
file is kept behind the blob store under "report/<id>", so it outlives the images it covers.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.analysis.detector.verdict import ModelInfo
from pixelcheck.audit import actions
from pixelcheck.blobs import BlobReader, BlobStore
from pixelcheck.db import new_id, unit_of_work, utcnow
from pixelcheck.errors import (
    FailedPrecondition,
    Forbidden,
    InvalidInput,
    NotFound,
    Unavailable,
    require_fields,
)
from pixelcheck.iam.models import UserRole
from pixelcheck.iam.principal import ADMIN, PROFESSIONAL, Principal
from pixelcheck.ids import check_id
from pixelcheck.ingestion.models import Image
from pixelcheck.paging import decode_token, encode_token, page_size
from pixelcheck.reports.assembly import load_document
from pixelcheck.reports.csv_export import render_csv
from pixelcheck.reports.document import ReportDocument
from pixelcheck.reports.models import Report, ReportImage
from pixelcheck.reports.pdf import render_pdf
from pixelcheck.tracing import stage_span

if TYPE_CHECKING:
    from pixelcheck.webhooks.service import EventOutbox

log = logging.getLogger("pixelcheck.reports")

MAX_TITLE_CHARS = 200
DOWNLOAD_CHUNK_BYTES = 256 * 1024  # one DownloadReport chunk message
_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
_REPORTERS = (PROFESSIONAL, ADMIN)


class ReportFormat(StrEnum):
    PDF = "PDF"
    CSV = "CSV"


MAX_BUILD_ATTEMPTS = 3  # builds started; the reconciler starts another after a worker died in one


class ReportState(StrEnum):
    REQUESTED = "REQUESTED"
    GENERATING = "GENERATING"
    READY = "READY"
    FAILED = "FAILED"


CONTENT_TYPES: dict[str, str] = {ReportFormat.PDF: "application/pdf", ReportFormat.CSV: "text/csv"}
_RENDERERS: dict[str, Callable[[ReportDocument], bytes]] = {ReportFormat.PDF: render_pdf,
                                                             ReportFormat.CSV: render_csv}


class EventRecorder(Protocol):
    def record(self, action: str, *, actor_id: str = "", target: str = "",
               payload: dict[str, Any] | None = None) -> None:
        """Record one domain event; must not block or raise."""


@dataclass(frozen=True)
class ReportView:
    """A report as callers see it."""

    id: str
    owner_id: str
    scope: str
    format: str
    state: str
    title: str
    image_ids: tuple[str, ...]
    filename: str
    size_bytes: int
    sha256: str
    create_time: datetime
    ready_time: datetime | None
    failure_reason: str
    deleted_image_ids: tuple[str, ...]


@dataclass(frozen=True)
class ReportPage:
    reports: tuple[ReportView, ...]
    next_page_token: str


@dataclass(frozen=True)
class ReportFile:
    """What a download announces before its bytes."""

    filename: str
    content_type: str
    size_bytes: int
    sha256: str


class Reports:
    """The reports context's use cases, with their dependencies passed in."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        read_sessions: sessionmaker[Session],
        blobs: BlobStore,
        enqueue_build: Callable[[str], None],
        model_info: Callable[[], ModelInfo | None],
        audit: EventRecorder,
        page_token_key: bytes,
        max_images: int = 100,
        webhooks: EventOutbox | None = None,
        spool_dir: str = "",
    ) -> None:
        self._sessions = sessions
        self._spool_dir = spool_dir  # where a clip is copied to draw its key frames
        self._read_sessions = read_sessions
        self._blobs = blobs
        self._enqueue_build = enqueue_build
        self._model_info = model_info
        self._audit = audit
        self._page_token_key = page_token_key
        self._max_images = max_images
        self._webhooks = webhooks

    # -- requesting -------------------------------------------------------------------------------
    def create_report(self, principal: Principal, *, image_ids: Sequence[str], format: str,
                      title: str) -> ReportView:
        """Request a report over images visible to the caller; a worker builds it after the commit.

        Raises Forbidden (caller is neither PROFESSIONAL nor ADMIN), InvalidInput (ids, format, title)
        and NotFound naming the first image the caller cannot see.
        """
        if not principal.roles & set(_REPORTERS):
            raise Forbidden("Reports are available to PROFESSIONAL and ADMIN users", reason="ROLE_REQUIRED",
                            metadata={"required_roles": ",".join(_REPORTERS)})
        ids, title = self._validated(image_ids, format, title)
        with unit_of_work(self._sessions) as session:
            images = {i.id: i for i in session.scalars(select(Image).where(Image.id.in_(ids)))}
            for image_id in ids:
                image = images.get(image_id)
                if image is None or not (image.owner_id == principal.user_id or principal.is_admin):
                    raise NotFound(f"Image {image_id} does not exist", reason="IMAGE_NOT_FOUND",
                                   metadata={"image_id": image_id})
            if not title:
                title = (f"Analysis of {images[ids[0]].filename}" if len(ids) == 1
                         else f"Analysis of {len(ids)} images")
            report = _new_report(principal.user_id, [(i, images[i].filename) for i in ids],
                                 format=format, title=title, automatic=False)
            session.add(report)
            session.flush()
            view = _view(report, deleted=())
        try:
            self._enqueue_build(view.id)
        except Exception as error:  # the broker is unreachable: keep nothing, so a retry is the only request
            log.warning("could not enqueue the build of report %s; withdrawing it", view.id, exc_info=True)
            with unit_of_work(self._sessions) as session:
                session.execute(delete(Report).where(Report.id == view.id, Report.state == ReportState.REQUESTED))
            raise Unavailable("The report could not be queued: the task queue is unreachable; request it again "
                              "shortly", reason="BROKER_UNAVAILABLE", retry_after_seconds=2) from error
        return view

    def add_automatic_report(self, session: Session, *, owner_id: str, image_id: str) -> str | None:
        """Add, inside the caller's open transaction, the automatic SINGLE PDF report of an analysed
        image when its owner holds PROFESSIONAL or ADMIN; return its id, else None.

        Does not commit; the caller commits and then enqueues the build (TaskQueue.build_report).
        """
        entitled = session.scalar(select(UserRole.role_name).where(
            UserRole.user_id == owner_id, UserRole.role_name.in_(_REPORTERS)).limit(1))
        if entitled is None:
            return None
        filename = session.scalar(select(Image.filename).where(Image.id == image_id)) or image_id
        report = _new_report(owner_id, [(image_id, filename)], format=ReportFormat.PDF,
                             title=f"Analysis of {filename}"[:MAX_TITLE_CHARS], automatic=True)
        session.add(report)
        return report.id

    def _validated(self, image_ids: Sequence[str], format: str, title: str) -> tuple[list[str], str]:
        violations: list[tuple[str, str]] = []
        ids = list(image_ids)
        if not 1 <= len(ids) <= self._max_images:
            violations.append(("image_ids", f"give 1 to {self._max_images} image ids, not {len(ids)}"))
        for position, image_id in enumerate(ids):
            if not _ID_PATTERN.fullmatch(image_id):
                violations.append((f"image_ids[{position}]", "must be 32 lowercase hexadecimal characters"))
        if len(set(ids)) != len(ids):
            violations.append(("image_ids", "must not name the same image twice"))
        if format not in CONTENT_TYPES:
            violations.append(("format", "choose REPORT_FORMAT_PDF or REPORT_FORMAT_CSV"))
        title = title.strip()
        if len(title) > MAX_TITLE_CHARS:
            violations.append(("title", f"at most {MAX_TITLE_CHARS} characters, not {len(title)}"))
        elif any(unicodedata.category(c) == "Cc" for c in title):
            violations.append(("title", "must not contain control characters"))
        require_fields(violations, "The report request has invalid fields")
        return ids, title

    # -- reading ----------------------------------------------------------------------------------
    def get_report(self, principal: Principal, report_id: str) -> ReportView:
        """The report, when the caller owns it or is ADMIN or SERVICE; raises NotFound otherwise."""
        with unit_of_work(self._read_sessions) as session:
            report = _visible_report(session, principal, report_id)
            return _view(report, deleted=_deleted_ids(session, [report])[report.id])

    def list_reports(self, principal: Principal, *, page_size_value: int, page_token: str) -> ReportPage:
        """A page of the caller's reports, newest first (SERVICE callers, who own none, see every user's).

        Raises InvalidInput for a negative page size or a token this list did not issue for the caller.
        """
        size = page_size(page_size_value)
        owner = "*" if principal.is_service else principal.user_id
        filters = {"owner": owner}  # binds a token to its caller: tokens grant no access by themselves
        query = select(Report)
        if owner != "*":
            query = query.where(Report.owner_id == owner)
        if page_token:
            cursor = decode_token(self._page_token_key, page_token, filters)
            try:
                after_time, after_id = datetime.fromisoformat(cursor["t"]), str(cursor["id"])
            except (KeyError, TypeError, ValueError):
                raise InvalidInput("page_token is not a token this list issued", reason="INVALID_PAGE_TOKEN",
                                   violations=[("page_token", "malformed")]) from None
            query = query.where(or_(Report.create_time < after_time,
                                    and_(Report.create_time == after_time, Report.id < after_id)))
        query = query.order_by(Report.create_time.desc(), Report.id.desc()).limit(size + 1)
        with unit_of_work(self._read_sessions) as session:
            rows = list(session.scalars(query))
            more, rows = len(rows) > size, rows[:size]
            deleted = _deleted_ids(session, rows)
            views = tuple(_view(r, deleted=deleted[r.id]) for r in rows)
        token = ""
        if more:
            last = rows[-1]
            token = encode_token(self._page_token_key, {"t": last.create_time.isoformat(), "id": last.id},
                                 filters)
        return ReportPage(views, token)

    def open_download(self, principal: Principal, report_id: str, *,
                      chunk_bytes: int = DOWNLOAD_CHUNK_BYTES) -> tuple[ReportFile, BlobReader]:
        """The header of a READY report's file and a reader of its bytes in chunks of at most chunk_bytes
        (never the whole file in memory); the caller closes the reader.

        Raises NotFound (unknown or invisible report), FailedPrecondition REPORT_NOT_READY and
        REPORT_FILE_MISSING, Unavailable when the blob store cannot be reached.
        """
        with unit_of_work(self._read_sessions) as session:
            report = _visible_report(session, principal, report_id)
            if report.state != ReportState.READY:
                raise FailedPrecondition(
                    f"Report {report.id} is {report.state}, not READY; download it once it is READY",
                    reason="REPORT_NOT_READY", metadata={"report_id": report.id, "state": report.state})
            header = ReportFile(report.filename, CONTENT_TYPES[report.format], report.size_bytes, report.sha256)
        reader = self._blobs.open(_blob_key(report.id), chunk_bytes)
        if reader is None:
            raise FailedPrecondition(f"The file of report {report.id} is missing; request it again",
                                     reason="REPORT_FILE_MISSING", metadata={"report_id": report.id})
        return header, reader

    # -- building (worker) ------------------------------------------------------------------------
    def build(self, report_id: str) -> None:
        """Build a requested report: render, store the file, mark it READY (or FAILED with a reason).

        Idempotent: a READY or FAILED (or unknown) report is left alone; a GENERATING one, left by a
        worker that died, is built again. Raises Unavailable when the database cannot be reached, so
        the task retries.
        """
        with stage_span("report.build", {"pixelcheck.report_id": report_id}):
            self._build(report_id)

    def _build(self, report_id: str) -> None:
        with unit_of_work(self._sessions) as session:
            report = session.get(Report, report_id)
            if report is None or report.state in (ReportState.READY, ReportState.FAILED):
                return
            if report.build_attempts >= MAX_BUILD_ATTEMPTS:  # each build before ended with its worker (killed)
                report.state = ReportState.FAILED
                report.failure_reason = (f"The report could not be built in {MAX_BUILD_ATTEMPTS} attempts; request "
                                         f"it again or quote report id {report_id} to support")
                return
            report.state = ReportState.GENERATING
            report.build_attempts += 1
            report.update_time = utcnow()
            owner_id, format = report.owner_id, report.format
        model = self._serving_model()
        try:
            with ExitStack() as files:  # a clip's local copy lives until its PDF is rendered
                with unit_of_work(self._read_sessions) as session:
                    document = load_document(session, self._blobs, session.get_one(Report, report_id), model,
                                             files, self._spool_dir)
                data = _RENDERERS[format](document)
        except Unavailable:
            raise
        except Exception:  # noqa: BLE001 - any rendering failure must end in FAILED, not a stuck GENERATING
            log.exception("building report %s failed", report_id)
            self._finish_failed(report_id, f"The {format} file could not be rendered; request the report "
                                           f"again or quote report id {report_id} to support")
            return
        self._finish_ready(report_id, owner_id, document.title, format, data)

    def _serving_model(self) -> ModelInfo | None:
        try:
            return self._model_info()
        except Exception:  # noqa: BLE001 - stored verdicts still make a report; only the model section is left out
            log.warning("no detector description for reports", exc_info=True)
            return None

    def _finish_ready(self, report_id: str, owner_id: str, title: str, format: str, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()
        with unit_of_work(self._sessions) as session:
            report = session.get_one(Report, report_id, with_for_update=True)
            if report.state != ReportState.GENERATING:
                return  # another delivery of the same task finished first
            self._blobs.put(session, _blob_key(report_id), data)
            report.filename = report_filename(title, format)
            report.size_bytes = len(data)
            report.sha256 = digest
            report.state = ReportState.READY
            report.ready_time = utcnow()
            deliveries = [] if self._webhooks is None else self._webhooks.record(
                session, owner_id=owner_id, event_type="report.ready", subject_id=report_id,
                data={"report_id": report_id, "format": format, "filename": report.filename,
                      "size_bytes": len(data), "sha256": digest, "image_ids": [i.image_id for i in report.images]})
        if self._webhooks is not None:
            self._webhooks.dispatch(deliveries)
        self._audit.record(actions.REPORT_READY, actor_id=owner_id, target=f"report:{report_id}",
                           payload={"format": format, "size_bytes": len(data), "sha256": digest})

    def _finish_failed(self, report_id: str, reason: str) -> None:
        with unit_of_work(self._sessions) as session:
            report = session.get_one(Report, report_id, with_for_update=True)
            if report.state == ReportState.GENERATING:
                report.state = ReportState.FAILED
                report.failure_reason = reason


def report_filename(title: str, format: str) -> str:
    """A portable file name from a title: ASCII words joined by dashes, plus .pdf or .csv."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:80].rstrip("-")
    return f"{slug or 'report'}.{format.lower()}"


def _new_report(owner_id: str, images: list[tuple[str, str]], *, format: str, title: str,
                automatic: bool) -> Report:
    report = Report(id=new_id(), owner_id=owner_id, scope="SINGLE" if len(images) == 1 else "BATCH",
                    format=format, state=ReportState.REQUESTED, title=title, automatic=automatic,
                    filename=report_filename(title, format), size_bytes=0, sha256="", failure_reason="",
                    create_time=utcnow())
    report.images = [ReportImage(position=p, image_id=i, filename=f) for p, (i, f) in enumerate(images)]
    return report


def _visible_report(session: Session, principal: Principal, report_id: str) -> Report:
    report = session.get(Report, check_id(report_id, "report_id"))
    # Another user's report is reported as missing: existence is not leaked.
    if report is None or not principal.can_see(report.owner_id):
        raise NotFound(f"Report {report_id} does not exist", reason="REPORT_NOT_FOUND",
                       metadata={"report_id": report_id})
    return report


def _deleted_ids(session: Session, reports: Sequence[Report]) -> dict[str, tuple[str, ...]]:
    """For each report, the covered image ids whose image no longer exists."""
    covered = {ri.image_id for r in reports for ri in r.images}
    existing = set(session.scalars(select(Image.id).where(Image.id.in_(covered)))) if covered else set()
    return {r.id: tuple(ri.image_id for ri in r.images if ri.image_id not in existing) for r in reports}


def _view(report: Report, *, deleted: tuple[str, ...]) -> ReportView:
    return ReportView(
        id=report.id, owner_id=report.owner_id, scope=report.scope, format=report.format, state=report.state,
        title=report.title, image_ids=tuple(ri.image_id for ri in report.images), filename=report.filename,
        size_bytes=report.size_bytes, sha256=report.sha256, create_time=report.create_time,
        ready_time=report.ready_time, failure_reason=report.failure_reason, deleted_image_ids=deleted,
    )


def _blob_key(report_id: str) -> str:
    return f"report/{report_id}"
