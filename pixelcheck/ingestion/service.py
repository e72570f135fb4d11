"""Ingestion use cases: accept an upload, read and list images, delete one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck import paging
from pixelcheck.analysis.models import Analysis
from pixelcheck.blobs import BlobStore
from pixelcheck.db import unit_of_work, utcnow
from pixelcheck.errors import Cancelled, DomainError, NotFound
from pixelcheck.iam.principal import Principal
from pixelcheck.ids import check_external_id_filter, check_id
from pixelcheck.ingestion.models import Image, UploadRequest
from pixelcheck.ingestion.receiving import ReceivedUpload
from pixelcheck.ingestion.validation import UploadLimits, analysis_cost, check_declared_type, decode_image
from pixelcheck.scheduling.policy import Share

log = logging.getLogger("pixelcheck.ingestion")


class AuditLog(Protocol):
    def record(self, action: str, *, actor_id: str = "", target: str = "", payload: dict[str, Any] | None = None,
               request_id: str = "", peer: str = "") -> None: ...

    def record_in(self, session: Session, action: str, *, actor_id: str = "", target: str = "",
                  payload: dict[str, Any] | None = None, request_id: str = "", peer: str = "") -> None: ...


class AnalysisQueue(Protocol):
    def analyze_image(self, image_id: str, share: Share, cost: int = 1) -> None: ...


@dataclass(frozen=True)
class ImageView:
    id: str
    owner_id: str
    filename: str
    content_type: str
    size_bytes: int
    width: int
    height: int
    sha256: str
    analysis_state: str
    create_time: datetime
    external_id: str = ""
    source_url: str = ""


@dataclass(frozen=True)
class ImagePage:
    images: list[ImageView]
    next_page_token: str
    total_size: int


def image_key(image_id: str) -> str:
    return f"image/{image_id}"


class Ingestion:
    def __init__(self, *, sessions: sessionmaker[Session], read_sessions: sessionmaker[Session],
                 blobs: BlobStore, queue: AnalysisQueue, audit: AuditLog, limits: UploadLimits,
                 page_token_key: bytes, share_of: Callable[[Principal], Share] = lambda p: Share(p.user_id),
                 spool_dir: str = "") -> None:
        self._sessions = sessions
        self._read = read_sessions
        self._blobs = blobs
        self._queue = queue
        self._audit = audit
        self.limits = limits
        self._page_key = page_token_key
        self._share_of = share_of  # the fair-scheduling share an uploader's analyses run under
        self.spool_dir = spool_dir  # where clips being received or imported are kept (temporary files)

    # -- upload ----------------------------------------------------------------------------------
    def record_rejection(self, principal: Principal, error: DomainError, size: int, sha256: str, filename: str,
                         *, request_id: str = "", peer: str = "", source_url: str = "") -> None:
        """Leaves the only trace of a rejected upload or import: an audit event."""
        payload: dict[str, Any] = {"reason": error.reason, "message": error.message, "sha256": sha256,
                                   "size_bytes": size}
        if source_url:
            payload["source_url"] = source_url
        self._audit.record("upload.rejected", actor_id=principal.user_id, target=filename, payload=payload,
                           request_id=request_id, peer=peer)

    def accept(self, principal: Principal, upload: ReceivedUpload, *, request_id: str = "", peer: str = "",
               source_url: str = "", abandoned: Callable[[], bool] = lambda: False) -> tuple[ImageView, bool]:
        """Stores a received upload and queues its analysis; returns the image and whether it was a duplicate.

        A replayed request_id returns the first response; the same bytes from the same user return the
        existing image. Raises InvalidInput/TooLarge for an image that fails the rules (nothing is stored).
        `abandoned` is asked just before committing: a call the client or a shutdown already cancelled stores
        nothing (a cancel that lands during the commit leaves a complete image, which a replay of the
        request_id returns). `source_url` is the URL an import fetched the bytes from. The upload is consumed:
        a clip's temporary file is removed before this returns or raises.
        """
        try:
            return self._accept(principal, upload, request_id=request_id, peer=peer, source_url=source_url,
                                abandoned=abandoned)
        finally:
            upload.discard()

    def _accept(self, principal: Principal, upload: ReceivedUpload, *, request_id: str, peer: str, source_url: str,
                abandoned: Callable[[], bool]) -> tuple[ImageView, bool]:
        meta = upload.metadata
        existing = self._replay_or_duplicate(principal.user_id, meta.request_id, upload.sha256)
        if existing is not None:
            return existing
        try:
            decoded = decode_image(upload.source, self.limits)
            check_declared_type(meta.content_type, decoded.content_type)
        except DomainError as exc:
            self.record_rejection(principal, exc, upload.size, upload.sha256, meta.filename,
                                  request_id=request_id, peer=peer, source_url=source_url)
            raise
        cost = analysis_cost(decoded, self.limits)
        try:
            with unit_of_work(self._sessions) as session:
                image = Image(owner_id=principal.user_id, filename=meta.filename,
                              content_type=decoded.content_type, size_bytes=upload.size,
                              width=decoded.width, height=decoded.height, sha256=upload.sha256,
                              external_id=meta.external_id, source_url=source_url)
                session.add(image)
                session.flush()
                if upload.spool is None:
                    self._blobs.put(session, image_key(image.id), upload.data)
                else:  # a clip: from its temporary file, a piece at a time
                    with upload.open() as source:
                        self._blobs.put_file(session, image_key(image.id), source, upload.size)
                session.add(Analysis(image_id=image.id, owner_id=image.owner_id, filename=image.filename,
                                     external_id=image.external_id, cost=cost))
                if meta.request_id:
                    session.add(UploadRequest(owner_id=principal.user_id, request_id=meta.request_id,
                                              image_id=image.id, duplicate=False))
                view = _view(image, "QUEUED")
                # In the image's own transaction, last: an accepted upload always has its event, even when
                # the server is killed right after the commit.
                self._audit.record_in(session, "upload.accepted", actor_id=principal.user_id,
                                      target=f"image:{view.id}", payload=_accepted_payload(view, source_url),
                                      request_id=request_id, peer=peer)
                if abandoned():
                    raise Cancelled("The upload was cancelled before it was stored")
        except IntegrityError:
            # A concurrent upload of the same bytes (or request id) by this user won the race.
            existing = self._replay_or_duplicate(principal.user_id, meta.request_id, upload.sha256)
            if existing is None:
                raise
            return existing
        self._enqueue(view.id, self._share_of(principal), cost)
        return view, False

    def _enqueue(self, image_id: str, share: Share, cost: int = 1) -> None:
        try:
            self._queue.analyze_image(image_id, share, cost)
        except Exception:  # the broker is down: the reconciler re-enqueues QUEUED analyses when it is back
            log.warning("could not enqueue analysis of %s; the reconciler will retry", image_id, exc_info=True)

    def replayed(self, owner_id: str, request_id: str) -> tuple[ImageView, bool] | None:
        """The first response to request_id, when this user's request_id was seen before (else None)."""
        if not request_id:
            return None
        with self._read() as session:
            return _replay(session, owner_id, request_id)

    def _replay_or_duplicate(self, owner_id: str, request_id: str, sha256: str) -> tuple[ImageView, bool] | None:
        """The earlier answer to a replayed request id, or the image these bytes already are; None for a new
        image. Looked up without a write transaction (a new image, the usual case, writes nothing here; on
        SQLite a write transaction would queue behind every other upload's for the write lock)."""
        with self._read() as session:
            if request_id:
                replay = _replay(session, owner_id, request_id)
                if replay is not None:
                    return replay
            image = session.scalar(select(Image).where(Image.owner_id == owner_id, Image.sha256 == sha256))
            if image is None:
                return None
            view = _view(image, _state(session, image.id))
        if request_id:  # the duplicate answers this request id from now on
            try:
                with unit_of_work(self._sessions) as session:
                    session.add(UploadRequest(owner_id=owner_id, request_id=request_id, image_id=image.id,
                                              duplicate=True))
            except IntegrityError:
                pass  # a concurrent replay of the same request id recorded it first
        return view, True

    # -- reading ---------------------------------------------------------------------------------
    def get_image(self, principal: Principal, image_id: str) -> ImageView:
        """The image, when the caller may see it. Raises NotFound otherwise (existence is not leaked)."""
        check_id(image_id, "image_id")
        with self._read() as session:
            image = session.get(Image, image_id)
            if image is None or not principal.can_see(image.owner_id):
                raise NotFound(f"Image {image_id} not found", reason="IMAGE_NOT_FOUND")
            return _view(image, _state(session, image.id))

    def list_images(self, principal: Principal, *, page_size: int, page_token: str, owner_id: str,
                    external_id: str = "") -> ImagePage:
        """The caller's images (or owner_id's, for ADMIN and SERVICE), newest first; only those given
        external_id when it is set. Raises InvalidInput for a bad filter, NotFound for an invisible owner."""
        size = paging.page_size(page_size)
        check_external_id_filter(external_id)
        if owner_id:
            check_id(owner_id, "owner_id")
            if owner_id != principal.user_id and not principal.sees_everything:
                raise NotFound(f"User {owner_id} not found", reason="USER_NOT_FOUND")
        owner = owner_id or principal.user_id
        filters = {"owner": owner, "external_id": external_id}
        cursor = paging.decode_token(self._page_key, page_token, filters) if page_token else None
        conditions = [Image.owner_id == owner]
        if external_id:
            conditions.append(Image.external_id == external_id)
        with self._read() as session:
            query = select(Image, Analysis.state).join(Analysis, Analysis.image_id == Image.id, isouter=True)
            query = query.where(*conditions)
            total = session.scalar(select(func.count()).select_from(Image).where(*conditions)) or 0
            if cursor:
                at = datetime.fromisoformat(cursor["t"])
                query = query.where(or_(Image.create_time < at, and_(Image.create_time == at, Image.id < cursor["id"])))
            rows = session.execute(query.order_by(Image.create_time.desc(), Image.id.desc()).limit(size + 1)).all()
        views = [_view(image, state or "QUEUED") for image, state in rows[:size]]
        token = ""
        if len(rows) > size:
            last = views[-1]
            token = paging.encode_token(self._page_key, {"t": last.create_time.isoformat(), "id": last.id}, filters)
        return ImagePage(views, token, int(total))

    # -- deleting --------------------------------------------------------------------------------
    def delete_image(self, principal: Principal, image_id: str, *, request_id: str = "", peer: str = "") -> None:
        """Removes the image, its bytes and its analysis. Raises NotFound when the caller may not see it."""
        check_id(image_id, "image_id")
        with unit_of_work(self._sessions) as session:
            image = session.get(Image, image_id)
            if image is None or not (principal.user_id == image.owner_id or principal.is_admin):
                raise NotFound(f"Image {image_id} not found", reason="IMAGE_NOT_FOUND")
            owner_id, sha256 = image.owner_id, image.sha256
            session.delete(image)  # analysis and request ids cascade in the database
            session.flush()
            self._blobs.delete(session, image_key(image_id))
        self._audit.record("image.deleted", actor_id=principal.user_id, target=f"image:{image_id}",
                           payload={"owner_id": owner_id, "sha256": sha256, "at": utcnow().isoformat()},
                           request_id=request_id, peer=peer)


def _replay(session: Session, owner_id: str, request_id: str) -> tuple[ImageView, bool] | None:
    replay = session.scalar(select(UploadRequest).where(
        UploadRequest.owner_id == owner_id, UploadRequest.request_id == request_id))
    if replay is None:
        return None
    image = session.get(Image, replay.image_id)
    if image is None:
        return None
    return _view(image, _state(session, image.id)), replay.duplicate


def _accepted_payload(view: ImageView, source_url: str) -> dict[str, Any]:
    accepted: dict[str, Any] = {"sha256": view.sha256, "size_bytes": view.size_bytes,
                                "content_type": view.content_type, "filename": view.filename}
    if source_url:
        accepted["source_url"] = source_url
    return accepted


def _state(session: Session, image_id: str) -> str:
    return session.scalar(select(Analysis.state).where(Analysis.image_id == image_id)) or "QUEUED"


def _view(image: Image, state: str) -> ImageView:
    return ImageView(id=image.id, owner_id=image.owner_id, filename=image.filename,
                     content_type=image.content_type, size_bytes=image.size_bytes, width=image.width,
                     height=image.height, sha256=image.sha256, analysis_state=state,
                     create_time=image.create_time, external_id=image.external_id, source_url=image.source_url)
