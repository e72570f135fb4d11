"""Per-call state shared by the interceptors and servicers of one RPC (a contextvar, not a global)."""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field

from pixelcheck.errors import Unauthenticated
from pixelcheck.iam.principal import Principal


@dataclass
class CallInfo:
    method: str
    request_id: str
    peer: str
    started: float = field(default_factory=time.perf_counter)
    principal: Principal | None = None
    code: str | None = None  # canonical status name once known, e.g. "OK", "NOT_FOUND"


_current: ContextVar[CallInfo | None] = ContextVar("pixelcheck_call", default=None)


def begin_call(info: CallInfo) -> None:
    _current.set(info)


def current_call() -> CallInfo | None:
    return _current.get()


def current_principal() -> Principal:
    """The authenticated caller of the current RPC; raises Unauthenticated outside one."""
    info = _current.get()
    if info is None or info.principal is None:
        raise Unauthenticated("This call needs a signed-in caller", reason="MISSING_CREDENTIALS")
    return info.principal


def current_request_id() -> str:
    info = _current.get()
    return info.request_id if info else ""


def current_peer() -> str:
    info = _current.get()
    return info.peer if info else ""
