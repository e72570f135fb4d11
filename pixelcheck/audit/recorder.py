"""AuditRecorder: takes audit events on the request path in O(1) and writes them to the chain in batches.

Recording only appends to an in-memory buffer; a background thread (started by `start()`) appends
batches of up to settings.audit_batch_size events to the hash chain every
settings.audit_flush_interval_seconds, one transaction per batch. Nothing here raises into callers.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.audit import chain
from pixelcheck.audit.chain import EventContent
from pixelcheck.db import DRIVER_CONNECTION_ERRORS, database_unreachable
from pixelcheck.errors import Unavailable
from pixelcheck.settings import Settings
from pixelcheck.tracing import current_trace_id

if TYPE_CHECKING:
    from pixelcheck.api.calls import CallInfo

log = logging.getLogger("pixelcheck.audit")
# what a batch write meets when the database fails (see database_unreachable for which mean it is down)
_WRITE_FAILURES: tuple[type[Exception], ...] = (DBAPIError, Unavailable, *DRIVER_CONNECTION_ERRORS)

RPC_ACTION = "rpc"
TRACE_ID_KEY = "trace_id"  # in the payload, when the event happened inside a recorded trace
DEFAULT_MAX_BUFFERED = 100_000
RETRY_DELAYS_SECONDS = (0.05, 0.2, 1.0)
# Column widths of AuditEvent: longer values are cut, never rejected (a recorder must not fail).
_LIMITS = {"actor_id": 32, "action": 64, "target": 255, "method": 128, "status_code": 32, "peer": 128,
           "request_id": 128}


class AuditRecorder:
    """Buffers audit events and appends them to the hash chain in batches, off the request path.

    - `record_call` / `record` are O(1), thread-safe, never block on the database and never raise.
    - With `start()` a daemon thread writes batches; `flush()` waits until everything recorded before it
      is written (or given up), `close()` flushes and stops the thread. Servers start it.
    - Without `start()` (a Celery task, a CLI command) events wait in the buffer until `flush()`, which
      then writes them synchronously in the calling thread: call `flush()` before the task returns.
    - A failed batch is retried with backoff (RETRY_DELAYS_SECONDS). When the database stays unreachable
      the batch goes back to the front of the buffer and the failure is counted and logged; the buffer is
      bounded (max_buffered events), and past the bound the OLDEST events are dropped and counted
      (`dropped`), so a long outage costs memory up to the bound, never the process. A batch rejected for
      another reason is retried event by event so only the offending event is dropped.
    - on_write_failure / on_drop (optional) are told of each failed batch and each dropped event, e.g. to
      count them in metrics.
    """

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, *,
                 max_buffered: int = DEFAULT_MAX_BUFFERED,
                 on_write_failure: Callable[[], None] | None = None,
                 on_drop: Callable[[int], None] | None = None) -> None:
        self._sessions = sessions
        self._batch_size = settings.audit_batch_size
        self._interval = settings.audit_flush_interval_seconds
        self._max_buffered = max_buffered
        self._buffer: deque[tuple[int, EventContent]] = deque()
        self._cond = threading.Condition()
        self._next_seq = 0  # sequence number of the next recorded event
        self._done_seq = 0  # every event with a lower sequence number is written or dropped
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._write_lock = threading.Lock()  # one writer at a time: the thread or a synchronous flush
        self.on_write_failure = on_write_failure
        self.on_drop = on_drop
        self.written = 0
        self.dropped = 0
        self.write_failures = 0

    # -- recording (request path) -------------------------------------------------------------------
    def record_call(self, info: CallInfo, code: str, duration_ms: int) -> None:
        """Record one finished RPC as action "rpc"; the actor is the authenticated caller, if any."""
        try:
            actor = info.principal.user_id if info.principal is not None else ""
            trace_id = current_trace_id()
            self._enqueue(EventContent(action=RPC_ACTION, actor_id=actor, method=info.method,
                                       status_code=code, peer=info.peer, request_id=info.request_id,
                                       duration_ms=int(duration_ms), occurred_time=datetime.now(UTC),
                                       payload={TRACE_ID_KEY: trace_id} if trace_id else {}))
        except Exception:  # auditing must never fail the call it describes
            log.exception("could not record the audit event of %s", getattr(info, "method", "?"))

    def record(self, action: str, *, actor_id: str = "", target: str = "",
               payload: dict[str, Any] | None = None, request_id: str = "", peer: str = "", method: str = "",
               status_code: str = "") -> None:
        """Record a domain event (e.g. "upload.rejected"); payload must be JSON-like (others become text).
        Inside a recorded trace, the payload also gets its trace_id."""
        try:
            trace_id = current_trace_id()
            if trace_id:
                payload = {**(payload or {}), TRACE_ID_KEY: trace_id}
            self._enqueue(normalised(EventContent(
                action=action, actor_id=actor_id, target=target, method=method, status_code=status_code,
                peer=peer, request_id=request_id, payload=payload or {}, occurred_time=datetime.now(UTC))))
        except Exception:
            log.exception("could not record the audit event %s", action)

    def record_in(self, session: Session, action: str, *, actor_id: str = "", target: str = "",
                  payload: dict[str, Any] | None = None, request_id: str = "", peer: str = "") -> None:
        """Append a domain event to the chain inside the caller's transaction: it commits or rolls back with
        the change it describes (not buffered, so a killed process cannot lose it; events still in the buffer
        follow it in the chain). Raises what the database raises; the caller's transaction then fails as a
        whole. Call it last before the commit: the chain's head stays locked until then."""
        trace_id = current_trace_id()
        if trace_id:
            payload = {**(payload or {}), TRACE_ID_KEY: trace_id}
        chain.append(session, [normalised(EventContent(action=action, actor_id=actor_id, target=target,
                                                       request_id=request_id, peer=peer, payload=payload or {},
                                                       occurred_time=datetime.now(UTC)))])

    def _enqueue(self, content: EventContent) -> None:
        dropped = 0
        with self._cond:
            self._buffer.append((self._next_seq, normalised_fields(content)))
            self._next_seq += 1
            while len(self._buffer) > self._max_buffered:
                seq, _ = self._buffer.popleft()
                self._done_seq = max(self._done_seq, seq + 1)
                dropped += 1
            if len(self._buffer) >= self._batch_size:
                self._cond.notify_all()
        if dropped:
            self._count_drop(dropped)

    # -- life cycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background writer (idempotent)."""
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="pixelcheck-audit-writer", daemon=True)
            self._thread.start()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until every event recorded before this call is written (or dropped); True when done.

        Without a running writer thread, writes synchronously in the calling thread. Never raises.
        """
        with self._cond:
            target = self._next_seq
            running = self._thread is not None and self._thread.is_alive()
        if not running:
            self._drain(until_seq=target, deadline=None if timeout is None else time.monotonic() + timeout)
            with self._cond:
                return self._done_seq >= target
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._cond.notify_all()
            while self._done_seq < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    log.warning("audit flush timed out with %d events still buffered", len(self._buffer))
                    return False
                self._cond.wait(remaining if remaining is None else min(remaining, 0.5))
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Flush, then stop the writer thread."""
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._thread = None

    @property
    def buffered(self) -> int:
        """Events waiting to be written."""
        with self._cond:
            return len(self._buffer)

    # -- writing ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._buffer and not self._stopping:
                    self._cond.wait(self._interval)
                if self._stopping and not self._buffer:
                    return
            if not self._write_next_batch():
                time.sleep(RETRY_DELAYS_SECONDS[-1])  # the database is down: do not spin

    def _drain(self, *, until_seq: int, deadline: float | None) -> None:
        while True:
            with self._cond:
                if self._done_seq >= until_seq or not self._buffer:
                    return
            if not self._write_next_batch() and (deadline is None or time.monotonic() >= deadline):
                return

    def _write_next_batch(self) -> bool:
        """Write one batch from the front of the buffer; False when it had to be put back."""
        with self._write_lock:
            with self._cond:
                batch = [self._buffer.popleft() for _ in range(min(self._batch_size, len(self._buffer)))]
            if not batch:
                return True
            outcome = self._write_with_retries([content for _, content in batch])
            if outcome == "unreachable":
                self._count_failure(len(batch))
                with self._cond:
                    self._buffer.extendleft(reversed(batch))  # keep their order at the front
                return False
            if outcome == "rejected":
                self._count_failure(len(batch))
                self._write_one_by_one(batch)
            with self._cond:
                self.written += len(batch) if outcome == "ok" else 0
                self._done_seq = max(self._done_seq, batch[-1][0] + 1)
                self._cond.notify_all()
            return True

    def _write_with_retries(self, contents: list[EventContent]) -> str:
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS_SECONDS)):
            if delay:
                time.sleep(delay)
            try:
                self._append(contents)
                return "ok"
            except _WRITE_FAILURES as exc:
                connection_lost = isinstance(exc, Unavailable) or database_unreachable(exc)
                log.warning("audit batch of %d events failed (attempt %d): %s", len(contents), attempt + 1,
                            type(exc).__name__)
                if not connection_lost and attempt >= 1:
                    return "rejected"  # not a transient outage: isolate the offending event below
            except Exception:
                log.exception("audit batch of %d events could not be written", len(contents))
                return "rejected"
        return "unreachable"

    def _write_one_by_one(self, batch: list[tuple[int, EventContent]]) -> None:
        for _, content in batch:
            try:
                self._append([content])
                self.written += 1
            except Exception:
                log.exception("dropping an audit event the database rejects: action %s", content.action)
                self._count_drop(1)

    def _append(self, contents: list[EventContent]) -> None:
        with self._sessions.begin() as session:
            chain.append(session, contents)

    def _count_failure(self, size: int) -> None:
        self.write_failures += 1
        log.error("audit trail write failed; %d events kept for retry, %d buffered in all",
                  size, self.buffered)
        if self.on_write_failure is not None:
            self.on_write_failure()

    def _count_drop(self, count: int) -> None:
        self.dropped += count
        log.error("audit buffer full or event rejected: %d audit events dropped", count)
        if self.on_drop is not None:
            self.on_drop(count)


def normalised(content: EventContent) -> EventContent:
    """content with a JSON-safe payload (non-JSON values become text) and fields cut to column widths."""
    payload = json.loads(json.dumps(content.payload, default=str)) if content.payload else {}
    if not isinstance(payload, dict):
        payload = {"value": payload}
    return normalised_fields(replace(content, payload=payload))


def normalised_fields(content: EventContent) -> EventContent:
    """content with its text fields cut to the column widths."""
    long = {name: getattr(content, name)[:limit] for name, limit in _LIMITS.items()
            if len(getattr(content, name)) > limit}
    return replace(content, **long) if long else content
