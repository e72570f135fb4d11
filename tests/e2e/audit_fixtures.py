"""Audit helpers for end-to-end tests: find the events of a call, make a real image to upload."""

from __future__ import annotations

import asyncio
import io
import random
import secrets

from PIL import Image
from sqlalchemy import select

from pixelcheck.audit.models import AuditEvent
from pixelcheck.bootstrap import Container

Metadata = tuple[tuple[str, str], ...]


def request_id() -> str:
    """A request id no other call uses."""
    return f"audit-test-{secrets.token_hex(8)}"


def with_request_id(metadata: Metadata, rid: str) -> Metadata:
    """metadata plus x-request-id: rid, so the call's audit events can be found."""
    return (*metadata, ("x-request-id", rid))


def stored_events(container: Container, rid: str, action: str = "rpc") -> list[AuditEvent]:
    """The stored audit events with request id rid and action, after writing what the server buffered."""
    container.audit_recorder.flush()
    with container.read_sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.request_id == rid,
                                                             AuditEvent.action == action)))


async def eventually_stored(container: Container, rid: str, count: int = 1,
                            timeout: float = 10.0) -> list[AuditEvent]:
    """stored_events once count of them exist: the server writes a call's event after it has answered (a
    cancelled stream finishes on the server a little later)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await asyncio.to_thread(stored_events, container, rid)
        if len(found) >= count or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.05)


def png_bytes(seed: int, size: tuple[int, int] = (96, 64)) -> bytes:
    """A small, fully decodable PNG; different seeds give different bytes."""
    rng = random.Random(seed)
    image = Image.new("RGB", size)
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256))
                   for _ in range(size[0] * size[1])])
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
