"""Audit use cases: record a caller's event, list events, verify the chain, summarise usage."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck import paging
from pixelcheck.analysis.models import Analysis
from pixelcheck.audit import chain
from pixelcheck.audit.chain import ChainedEvent, EventContent, Verification
from pixelcheck.audit.models import AuditEvent
from pixelcheck.audit.recorder import RPC_ACTION, normalised
from pixelcheck.db import read_snapshot, unit_of_work, utcnow
from pixelcheck.errors import InvalidInput, require_fields
from pixelcheck.ingestion.models import Image
from pixelcheck.reports.models import Report
from pixelcheck.settings import Settings

ACTION_PATTERN = re.compile(r"[a-z0-9._-]{1,64}")
MAX_TARGET_LENGTH = 255
MAX_PAYLOAD_BYTES = 16 * 1024


@dataclass(frozen=True)
class EventFilter:
    """ListEvents filters; empty strings and None mean "any"."""

    actor_id: str = ""
    action: str = ""
    method: str = ""
    status_code: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def as_token_filters(self) -> dict[str, Any]:
        """The filters a page token is bound to."""
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class EventPage:
    events: list[ChainedEvent]
    next_page_token: str


@dataclass(frozen=True)
class UsageStatistics:
    images_analysed: int
    labelled_ai: int
    labelled_real: int
    mean_analysis_ms: float
    p95_analysis_ms: float
    failures: int
    active_users: int
    reports_built: int
    images_uploaded: int


class AuditTrail:
    """The AuditService use cases over the audit tables (and, for usage, the other contexts' tables)."""

    def __init__(self, sessions: sessionmaker[Session], read_sessions: sessionmaker[Session],
                 settings: Settings) -> None:
        self._sessions = sessions
        self._read = read_sessions
        self._token_key = paging.token_key(settings.jwt_secret, "audit-events")

    def record_event(self, *, actor_id: str, action: str, target: str, payload: dict[str, Any],
                     request_id: str = "", peer: str = "") -> ChainedEvent:
        """Append a caller's domain event to the chain now (not buffered) and return it.

        Raises InvalidInput (one BadRequest listing every bad field) for a malformed action, the reserved
        action "rpc", a target over 255 characters or a payload over 16 KiB of JSON; Unavailable when the
        database is unreachable.
        """
        violations: list[tuple[str, str]] = []
        if not ACTION_PATTERN.fullmatch(action):
            violations.append(("action", "must be 1-64 characters of a-z, 0-9, '.', '_', '-'"))
        elif action == RPC_ACTION:
            violations.append(("action", "'rpc' is reserved for calls the server records itself"))
        if len(target) > MAX_TARGET_LENGTH:
            violations.append(("target", f"must be at most {MAX_TARGET_LENGTH} characters"))
        if len(json.dumps(payload, separators=(",", ":"), default=str).encode()) > MAX_PAYLOAD_BYTES:
            violations.append(("payload", f"must be at most {MAX_PAYLOAD_BYTES // 1024} KiB as JSON"))
        require_fields(violations, "The audit event is invalid")
        content = normalised(EventContent(action=action, actor_id=actor_id, target=target, payload=payload,
                                          request_id=request_id, peer=peer, occurred_time=utcnow()))
        with unit_of_work(self._sessions) as session:
            return chain.append(session, [content])[0]

    def list_events(self, filters: EventFilter, *, page_size: int, page_token: str) -> EventPage:
        """A page of events matching filters, newest (highest id) first.

        Raises InvalidInput: reason INVALID_PAGE_SIZE for a negative page_size, INVALID_PAGE_TOKEN for a
        token that is forged or was issued for other filters, INVALID_ARGUMENT for since >= until.
        """
        size = paging.page_size(page_size)
        if filters.since and filters.until and filters.since >= filters.until:
            raise InvalidInput("since must be before until", violations=[("until", "must be after since")])
        token_filters = filters.as_token_filters()
        before_id = None
        if page_token:
            cursor = paging.decode_token(self._token_key, page_token, token_filters)
            before_id = cursor.get("before_id")
            if not isinstance(before_id, int):
                raise InvalidInput("page_token is not a token this list issued", reason="INVALID_PAGE_TOKEN")
        query = select(AuditEvent)
        for column, value in ((AuditEvent.actor_id, filters.actor_id), (AuditEvent.action, filters.action),
                              (AuditEvent.method, filters.method),
                              (AuditEvent.status_code, filters.status_code)):
            if value:
                query = query.where(column == value)
        if filters.since is not None:
            query = query.where(AuditEvent.occurred_time >= filters.since)
        if filters.until is not None:
            query = query.where(AuditEvent.occurred_time < filters.until)
        if before_id is not None:
            query = query.where(AuditEvent.id < before_id)
        # Keyset paging on the primary key: each filter column has an (column, id) index for this order.
        query = query.order_by(AuditEvent.id.desc()).limit(size + 1)
        with self._read() as session:
            rows = list(session.scalars(query))
        more = len(rows) > size
        rows = rows[:size]
        events = [ChainedEvent(r.id, chain.content_of(r), r.prev_hash, r.hash) for r in rows]
        if not more:
            return EventPage(events, "")
        cursor = {"before_id": rows[-1].id}
        return EventPage(events, paging.encode_token(self._token_key, cursor, token_filters))

    def verify(self) -> Verification:
        """Walk the chain from the latest pruning checkpoint to the head in one consistent snapshot."""
        with read_snapshot(self._read) as session:
            return chain.verify_stored(session)

    def usage_statistics(self, *, since: datetime | None, until: datetime | None) -> UsageStatistics:
        """What happened in [since, until): analyses finished and failed, their timing, users, reports.

        Raises InvalidInput when since is not before until.
        """
        until = until or utcnow()
        if since is not None and since >= until:
            raise InvalidInput("since must be before until", violations=[("until", "must be after since")])

        def in_range(column: Any) -> list[Any]:
            return [column < until] + ([column >= since] if since is not None else [])

        finished = [Analysis.state == "SUCCEEDED", *in_range(Analysis.finish_time)]
        with self._read() as session:
            by_label = dict(session.execute(
                select(Analysis.label, func.count()).where(*finished).group_by(Analysis.label)).all())
            mean_ms = session.scalar(select(func.avg(Analysis.duration_ms)).where(
                *finished, Analysis.duration_ms.is_not(None)))
            timed = session.scalar(select(func.count()).where(*finished, Analysis.duration_ms.is_not(None)))
            p95_ms = None
            if timed:  # nearest-rank percentile, computed by the database: no row list in memory
                p95_ms = session.scalar(
                    select(Analysis.duration_ms).where(*finished, Analysis.duration_ms.is_not(None))
                    .order_by(Analysis.duration_ms).offset(math.ceil(0.95 * timed) - 1).limit(1))
            failures = session.scalar(select(func.count()).where(
                Analysis.state == "FAILED", *in_range(Analysis.finish_time)))
            active = session.scalar(select(func.count(func.distinct(AuditEvent.actor_id))).where(
                AuditEvent.actor_id != "", *in_range(AuditEvent.occurred_time)))
            reports = session.scalar(select(func.count()).where(
                Report.state == "READY", *in_range(Report.ready_time)))
            uploaded = session.scalar(select(func.count()).where(*in_range(Image.create_time)))
        return UsageStatistics(
            images_analysed=sum(by_label.values()), labelled_ai=by_label.get("AI", 0),
            labelled_real=by_label.get("REAL", 0), mean_analysis_ms=float(mean_ms or 0.0),
            p95_analysis_ms=float(p95_ms or 0.0), failures=failures or 0, active_users=active or 0,
            reports_built=reports or 0, images_uploaded=uploaded or 0)
