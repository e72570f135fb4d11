"""The audit hash chain: canonical serialisation of an event, its hash, appending and verifying.

hash(event) = SHA-256 over the canonical JSON of the event's content (id, actor, action, target, method,
status, peer, request id, duration, payload, time) and the previous event's hash. Changing, deleting or
reordering any stored event therefore breaks the chain at that event. Appenders lock the single
AuditChainHead row, so any number of processes keep one linear chain; pruning leaves an AuditCheckpoint
(the last pruned event's id and hash) from which verification resumes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from pixelcheck.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent

GENESIS_HASH = "0" * 64
HEAD_ID = 1
VERIFY_PAGE_SIZE = 1000


@dataclass(frozen=True)
class EventContent:
    """What an event says, before it has a place in the chain."""

    action: str
    actor_id: str = ""
    target: str = ""
    method: str = ""
    status_code: str = ""
    peer: str = ""
    request_id: str = ""
    duration_ms: int = 0
    payload: dict[str, Any] = field(default_factory=dict)
    occurred_time: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class ChainedEvent:
    """An event with its chain position and hashes, as stored."""

    id: int
    content: EventContent
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Verification:
    """The outcome of a walk: ok, how many events were checked, the first broken event's id (0 when ok)."""

    ok: bool
    checked_count: int
    first_broken_event_id: int = 0


def canonical_bytes(event_id: int, content: EventContent, prev_hash: str) -> bytes:
    """The exact bytes hashed for an event: sorted-key compact JSON, times as UTC microseconds."""
    doc = {
        "id": event_id,
        "actor_id": content.actor_id,
        "action": content.action,
        "target": content.target,
        "method": content.method,
        "status_code": content.status_code,
        "peer": content.peer,
        "request_id": content.request_id,
        "duration_ms": int(content.duration_ms),
        "payload": content.payload,
        "occurred_time": _time_text(content.occurred_time),
        "prev_hash": prev_hash,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event_id: int, content: EventContent, prev_hash: str) -> str:
    """Lowercase hex SHA-256 of the event's canonical bytes (which include prev_hash)."""
    return hashlib.sha256(canonical_bytes(event_id, content, prev_hash)).hexdigest()


def link(first_id: int, prev_hash: str, contents: Sequence[EventContent]) -> list[ChainedEvent]:
    """Chain contents after an event with id first_id - 1 and hash prev_hash."""
    chained = []
    for offset, content in enumerate(contents):
        event_id = first_id + offset
        digest = event_hash(event_id, content, prev_hash)
        chained.append(ChainedEvent(event_id, content, prev_hash, digest))
        prev_hash = digest
    return chained


def append(session: Session, contents: Sequence[EventContent]) -> list[ChainedEvent]:
    """Append contents to the chain inside session's transaction; the caller commits.

    Locks the chain head row (SELECT ... FOR UPDATE on MySQL/MariaDB; SQLite's write transaction is
    already exclusive), so concurrent appenders in any process serialise and the chain stays linear.
    """
    head = session.scalar(select(AuditChainHead).where(AuditChainHead.id == HEAD_ID).with_for_update())
    if head is None:  # a database created without the seeding migration (a second creator fails on the key)
        head = AuditChainHead(id=HEAD_ID, last_event_id=0, last_hash=GENESIS_HASH)
        session.add(head)
        session.flush()
    chained = link(head.last_event_id + 1, head.last_hash, contents)
    if not chained:
        return chained
    # A Core insert of plain rows: the ORM's bulk path costs more per event than hashing it.
    session.connection().execute(insert(AuditEvent.__table__), [_row(e) for e in chained])
    head.last_event_id = chained[-1].id
    head.last_hash = chained[-1].hash
    return chained


def _row(event: ChainedEvent) -> dict[str, Any]:
    c = event.content
    return {"id": event.id, "actor_id": c.actor_id, "action": c.action, "target": c.target,
            "method": c.method, "status_code": c.status_code, "peer": c.peer, "request_id": c.request_id,
            "duration_ms": c.duration_ms, "payload": c.payload, "occurred_time": c.occurred_time,
            "hash": event.hash, "prev_hash": event.prev_hash}


def content_of(row: Any) -> EventContent:
    """The EventContent of a stored row (an AuditEvent or a row with the same columns)."""
    return EventContent(action=row.action, actor_id=row.actor_id, target=row.target, method=row.method,
                        status_code=row.status_code, peer=row.peer, request_id=row.request_id,
                        duration_ms=row.duration_ms, payload=row.payload or {},
                        occurred_time=row.occurred_time)


def verify_events(events: Iterable[ChainedEvent], *, start_id: int, start_hash: str,
                  end_id: int | None = None, end_hash: str | None = None) -> Verification:
    """Walk events (in id order) from the event after start_id, whose predecessor hash is start_hash.

    The first event whose id skips a position (the event after a deletion), whose prev_hash is not its
    predecessor's hash, or whose hash does not match its content is named. When end_id/end_hash (the
    chain head) are given, a chain that stops short of them is broken at the first missing id.
    """
    expected_id, expected_prev, checked = start_id + 1, start_hash, 0
    for event in events:
        if (event.id != expected_id or event.prev_hash != expected_prev
                or event_hash(event.id, event.content, event.prev_hash) != event.hash):
            return Verification(False, checked, event.id)
        checked += 1
        expected_id, expected_prev = event.id + 1, event.hash
    last_id = expected_id - 1
    if end_id is not None:
        if last_id < end_id:  # the newest events were deleted
            return Verification(False, checked, last_id + 1)
        if last_id > end_id:  # rows beyond the head were added behind the chain's back
            return Verification(False, checked, end_id + 1)
        if end_hash is not None and end_hash != expected_prev and last_id > start_id:
            return Verification(False, checked, last_id)  # the tail was rewritten with recomputed hashes
    return Verification(True, checked)


def verify_stored(session: Session, *, page_size: int = VERIFY_PAGE_SIZE) -> Verification:
    """Verify the stored chain from the latest checkpoint (or the beginning) to the head.

    Reads pages of page_size rows in id order, so memory stays bounded at any chain length. Run it in one
    transaction with a consistent snapshot (REPEATABLE READ on MySQL/MariaDB, any SQLite read transaction)
    so concurrent appends and pruning do not show up as breaks.
    """
    checkpoint = session.execute(
        select(AuditCheckpoint.last_pruned_event_id, AuditCheckpoint.last_pruned_hash)
        .order_by(AuditCheckpoint.last_pruned_event_id.desc()).limit(1)
    ).first()
    start_id, start_hash = (checkpoint[0], checkpoint[1]) if checkpoint else (0, GENESIS_HASH)
    head = session.execute(
        select(AuditChainHead.last_event_id, AuditChainHead.last_hash).where(AuditChainHead.id == HEAD_ID)
    ).first()
    end_id, end_hash = (head[0], head[1]) if head else (None, None)
    if end_id is None:  # no head row: the last stored row is the end
        end_id = session.scalar(select(func.max(AuditEvent.id))) or start_id
    return verify_events(_stream(session, start_id, page_size), start_id=start_id, start_hash=start_hash,
                         end_id=end_id, end_hash=end_hash)


_COLUMNS = (AuditEvent.id, AuditEvent.actor_id, AuditEvent.action, AuditEvent.target, AuditEvent.method,
            AuditEvent.status_code, AuditEvent.peer, AuditEvent.request_id, AuditEvent.duration_ms,
            AuditEvent.payload, AuditEvent.occurred_time, AuditEvent.hash, AuditEvent.prev_hash)


def _stream(session: Session, after_id: int, page_size: int) -> Iterator[ChainedEvent]:
    while True:
        # Plain column rows, not ORM objects: nothing accumulates in the session's identity map.
        rows = session.execute(
            select(*_COLUMNS).where(AuditEvent.id > after_id).order_by(AuditEvent.id).limit(page_size)
        ).all()
        for row in rows:
            yield ChainedEvent(row.id, content_of(row), row.prev_hash, row.hash)
        if len(rows) < page_size:
            return
        after_id = rows[-1].id


def _time_text(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
