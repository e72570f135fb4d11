"""Webhook use cases: register, list, delete and re-key endpoints, list their deliveries, and the outbox the
analysis pipeline and the report builder write events into (inside their own transactions)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck import paging
from pixelcheck.audit import actions
from pixelcheck.db import unit_of_work, utcnow
from pixelcheck.errors import InvalidInput, NotFound, TooLarge
from pixelcheck.iam.principal import Principal
from pixelcheck.ids import check_id
from pixelcheck.webhooks.models import WebhookDelivery, WebhookEndpoint
from pixelcheck.webhooks.signing import new_secret

log = logging.getLogger("pixelcheck.webhooks")

ANALYSIS_SUCCEEDED = "analysis.succeeded"
ANALYSIS_FAILED = "analysis.failed"
REPORT_READY = "report.ready"
EVENT_TYPES = (ANALYSIS_SUCCEEDED, ANALYSIS_FAILED, REPORT_READY)
_DESCRIPTION_MAX = 200
_LOG_KEPT = 20

TargetCheck = Callable[[str], Awaitable[None]]  # raises InvalidInput/FailedPrecondition for a refused URL
Run = Callable[..., Awaitable[Any]]


class AuditLog(Protocol):
    def record(self, action: str, *, actor_id: str = "", target: str = "", payload: dict[str, Any] | None = None,
               request_id: str = "", peer: str = "") -> None: ...


class EventOutbox(Protocol):
    """What the contexts that announce events (analysis, reports) need of this one."""

    def record(self, session: Session, *, owner_id: str, event_type: str, subject_id: str,
               data: dict[str, Any]) -> list[str]: ...

    def dispatch(self, delivery_ids: list[str]) -> None: ...


class DeliveryQueue(Protocol):
    def deliver_webhook(self, delivery_id: str, countdown: float = 0.0) -> None: ...


@dataclass(frozen=True)
class EndpointView:
    id: str
    url: str
    event_types: tuple[str, ...]
    description: str
    state: str
    disabled_reason: str
    failing_since: datetime | None
    create_time: datetime
    secret_time: datetime


@dataclass(frozen=True)
class DeliveryView:
    id: str
    endpoint_id: str
    event_type: str
    subject_id: str
    state: str
    attempts: int
    last_status_code: int
    last_error: str
    next_attempt_time: datetime | None
    create_time: datetime
    delivered_time: datetime | None
    attempt_status_codes: tuple[int, ...]


@dataclass(frozen=True)
class Page:
    items: tuple[Any, ...]
    next_page_token: str


_LINK = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)\S+")


def link_free(text: str) -> str:
    """text without links: a summary quotes file metadata (generator names, tools), which anyone can write."""
    return _LINK.sub("[link removed]", text)


def event_body(event_type: str, data: dict[str, Any], at: datetime) -> str:
    """The JSON a delivery sends: {"type", "timestamp", "data"}, compact, keys sorted (the exact bytes signed)."""
    document = {"type": event_type, "timestamp": at.isoformat().replace("+00:00", "Z"), "data": data}
    return json.dumps(document, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


class Webhooks:
    def __init__(self, *, sessions: sessionmaker[Session], read_sessions: sessionmaker[Session], audit: AuditLog,
                 queue: DeliveryQueue, page_token_key: bytes, max_endpoints: int,
                 secret_overlap: timedelta = timedelta(hours=24)) -> None:
        self._sessions = sessions
        self._read = read_sessions
        self._audit = audit
        self._queue = queue
        self._page_key = page_token_key
        self._max_endpoints = max_endpoints
        self._overlap = secret_overlap

    # -- endpoints -------------------------------------------------------------------------------
    async def create_endpoint(self, principal: Principal, *, url: str, event_types: list[str], description: str,
                              check_target: TargetCheck, run: Run, request_id: str = "", peer: str = ""
                              ) -> tuple[EndpointView, str]:
        """Registers an endpoint; returns it and its secret (shown once). Raises InvalidInput for a bad field
        or refused address (the ImportImage rules, checked now and again at every delivery), TooLarge
        (WEBHOOK_ENDPOINT_LIMIT)."""
        violations = _endpoint_violations(event_types, description)
        if violations:
            raise InvalidInput("The webhook endpoint is invalid: " + "; ".join(f"{f} {d}" for f, d in violations),
                               reason="INVALID_WEBHOOK_ENDPOINT", violations=violations)
        await check_target(url)
        return await run(self._create, principal, url, list(dict.fromkeys(event_types)), description,  # type: ignore[no-any-return]
                         request_id, peer)

    def _create(self, principal: Principal, url: str, event_types: list[str], description: str, request_id: str,
                peer: str) -> tuple[EndpointView, str]:
        secret = new_secret()
        with unit_of_work(self._sessions) as session:
            count = session.scalar(select(func.count()).select_from(WebhookEndpoint)
                                   .where(WebhookEndpoint.owner_id == principal.user_id)) or 0
            if count >= self._max_endpoints:
                raise TooLarge(f"At most {self._max_endpoints} webhook endpoints per user; delete one first",
                               reason="WEBHOOK_ENDPOINT_LIMIT", metadata={"limit": str(self._max_endpoints)})
            endpoint = WebhookEndpoint(owner_id=principal.user_id, url=url, event_types=event_types,
                                       description=description, secret=secret)
            session.add(endpoint)
            session.flush()
            view = _endpoint_view(endpoint)
        self._audit.record(actions.WEBHOOK_ENDPOINT_CREATED, actor_id=principal.user_id, target=f"webhook:{view.id}",
                           payload={"url": url, "event_types": event_types}, request_id=request_id, peer=peer)
        return view, secret

    def list_endpoints(self, principal: Principal, *, page_size: int, page_token: str) -> Page:
        """The caller's endpoints, newest first."""
        size = paging.page_size(page_size)
        filters = {"owner": principal.user_id}
        query = select(WebhookEndpoint).where(WebhookEndpoint.owner_id == principal.user_id)
        query = _after(query, WebhookEndpoint, self._cursor(page_token, filters))
        with self._read() as session:
            rows = list(session.scalars(query.order_by(WebhookEndpoint.create_time.desc(),
                                                       WebhookEndpoint.id.desc()).limit(size + 1)))
            views = tuple(_endpoint_view(r) for r in rows[:size])
        return Page(views, self._next_token(rows, size, filters))

    def delete_endpoint(self, principal: Principal, endpoint_id: str, *, request_id: str = "", peer: str = "") -> None:
        """Removes the endpoint and its deliveries. Raises NotFound unless it is the caller's."""
        with unit_of_work(self._sessions) as session:
            endpoint = self._owned(session, principal, endpoint_id)
            session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
            session.delete(endpoint)
        self._audit.record(actions.WEBHOOK_ENDPOINT_DELETED, actor_id=principal.user_id,
                           target=f"webhook:{endpoint_id}", request_id=request_id, peer=peer)

    def rotate_secret(self, principal: Principal, endpoint_id: str, *, request_id: str = "",
                      peer: str = "") -> tuple[EndpointView, str]:
        """A new secret for the endpoint (shown once); the previous one is still signed with for the overlap."""
        secret = new_secret()
        with unit_of_work(self._sessions) as session:
            endpoint = self._owned(session, principal, endpoint_id)
            now = utcnow()
            endpoint.previous_secret, endpoint.previous_secret_until = endpoint.secret, now + self._overlap
            endpoint.secret, endpoint.secret_time = secret, now
            view = _endpoint_view(endpoint)
        self._audit.record(actions.WEBHOOK_SECRET_ROTATED, actor_id=principal.user_id, target=f"webhook:{endpoint_id}",
                           request_id=request_id, peer=peer)
        return view, secret

    def list_deliveries(self, principal: Principal, endpoint_id: str, *, page_size: int, page_token: str) -> Page:
        """The endpoint's deliveries, newest first. Raises NotFound unless the endpoint is the caller's."""
        size = paging.page_size(page_size)
        filters = {"owner": principal.user_id, "endpoint": endpoint_id}
        with self._read() as session:
            self._owned(session, principal, endpoint_id)
            query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
            query = _after(query, WebhookDelivery, self._cursor(page_token, filters))
            rows = list(session.scalars(query.order_by(WebhookDelivery.create_time.desc(),
                                                       WebhookDelivery.id.desc()).limit(size + 1)))
            views = tuple(_delivery_view(r) for r in rows[:size])
        return Page(views, self._next_token(rows, size, filters))

    def _owned(self, session: Session, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
        check_id(endpoint_id, "endpoint_id")
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        if endpoint is None or endpoint.owner_id != principal.user_id:
            raise NotFound(f"Webhook endpoint {endpoint_id} not found", reason="WEBHOOK_ENDPOINT_NOT_FOUND")
        return endpoint

    def _cursor(self, page_token: str, filters: dict[str, str]) -> tuple[datetime, str] | None:
        if not page_token:
            return None
        cursor = paging.decode_token(self._page_key, page_token, filters)
        try:
            return datetime.fromisoformat(cursor["t"]), str(cursor["id"])
        except (KeyError, TypeError, ValueError):
            raise InvalidInput("page_token is not a token this list issued", reason="INVALID_PAGE_TOKEN",
                               violations=[("page_token", "malformed")]) from None

    def _next_token(self, rows: list[Any], size: int, filters: dict[str, str]) -> str:
        if len(rows) <= size:
            return ""
        last = rows[size - 1]
        return paging.encode_token(self._page_key, {"t": last.create_time.isoformat(), "id": last.id}, filters)

    # -- the outbox ------------------------------------------------------------------------------
    def record(self, session: Session, *, owner_id: str, event_type: str, subject_id: str,
               data: dict[str, Any]) -> list[str]:
        """Adds, inside the caller's transaction, one delivery per enabled endpoint of owner_id subscribed to
        event_type; returns their ids, to `dispatch` after the commit. An event recorded twice (a redelivered
        task) adds nothing the second time."""
        endpoints = session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.owner_id == owner_id,
                                                                  WebhookEndpoint.state == "ENABLED")).all()
        now = utcnow()
        body = event_body(event_type, data, now)
        ids: list[str] = []
        for endpoint in endpoints:
            if event_type not in endpoint.event_types:
                continue
            exists = session.scalar(select(WebhookDelivery.id).where(
                WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.event_type == event_type,
                WebhookDelivery.subject_id == subject_id))
            if exists is not None:
                continue
            delivery = WebhookDelivery(endpoint_id=endpoint.id, owner_id=owner_id, event_type=event_type,
                                       subject_id=subject_id, body=body, next_attempt_time=now, create_time=now)
            try:
                with session.begin_nested():
                    session.add(delivery)
            except IntegrityError:
                continue  # recorded concurrently by another run of the same event
            ids.append(delivery.id)
        return ids

    def dispatch(self, delivery_ids: list[str]) -> None:
        """Sends the first attempt of each delivery to the workers (after the outbox commit). A broker that
        cannot be reached loses nothing: the dispatcher finds due deliveries in the database."""
        for delivery_id in delivery_ids:
            try:
                self._queue.deliver_webhook(delivery_id)
            except Exception:
                log.warning("could not enqueue webhook delivery %s; the dispatcher will", delivery_id, exc_info=True)

    def due_delivery_ids(self, limit: int = 500) -> list[str]:
        """Deliveries due and not in flight (their task was lost, or their retry time came): for the dispatcher."""
        now = utcnow()
        with self._read() as session:
            return list(session.scalars(
                select(WebhookDelivery.id)
                .where(WebhookDelivery.state == "PENDING", WebhookDelivery.next_attempt_time <= now,
                       or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now))
                .order_by(WebhookDelivery.next_attempt_time).limit(limit)))


def _endpoint_violations(event_types: list[str], description: str) -> list[tuple[str, str]]:
    violations: list[tuple[str, str]] = []
    if not event_types:
        violations.append(("event_types", "at least one event type is required"))
    elif any(e not in EVENT_TYPES for e in event_types):
        violations.append(("event_types", "unknown event type"))
    if len(description) > _DESCRIPTION_MAX or not description.isprintable():
        violations.append(("description", f"must be at most {_DESCRIPTION_MAX} printable characters"))
    return violations


def _after(query: Any, model: Any, cursor: tuple[datetime, str] | None) -> Any:
    if cursor is None:
        return query
    at, last_id = cursor
    return query.where(or_(model.create_time < at, and_(model.create_time == at, model.id < last_id)))


def _endpoint_view(row: WebhookEndpoint) -> EndpointView:
    return EndpointView(id=row.id, url=row.url, event_types=tuple(row.event_types), description=row.description,
                        state=row.state, disabled_reason=row.disabled_reason, failing_since=row.failing_since,
                        create_time=row.create_time, secret_time=row.secret_time)


def _delivery_view(row: WebhookDelivery) -> DeliveryView:
    return DeliveryView(id=row.id, endpoint_id=row.endpoint_id, event_type=row.event_type, subject_id=row.subject_id,
                        state=row.state, attempts=row.attempts, last_status_code=row.last_status_code,
                        last_error=row.last_error,
                        next_attempt_time=row.next_attempt_time if row.state == "PENDING" else None,
                        create_time=row.create_time, delivered_time=row.delivered_time,
                        attempt_status_codes=tuple(int(a.get("status", 0)) for a in row.attempt_log[-_LOG_KEPT:]))

