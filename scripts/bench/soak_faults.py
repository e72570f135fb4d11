"""The soak's faults, one after another on a schedule, each followed by a recovery probe: a fresh account uploads
one image at a time until a verdict arrives for an upload made after the fault's condition was removed.

Kinds: SIGKILL of an inference worker (a replacement is started, as a process manager would), of one server
process (its supervisor restarts it) and of the webhooks worker (restarted); a Redis restart (the soak's own
server, stopped and started on the same port: its queues are lost); a database outage (the soak's own
mariadbd stopped and started again, or on SQLite an exclusive write transaction held open); and a slow blob
store (every chunk to and from S3 delayed for a window).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from soak_calls import Account, upload, watch
from soak_deploy import Deployment
from soak_traffic import Traffic
from sqlalchemy import make_url

KINDS = ("inference worker SIGKILL", "server process SIGKILL", "webhooks worker SIGKILL", "Redis restart",
         "database outage", "slow blob store")
RECOVERY_LIMIT_SECONDS = 120.0
RECOVERY_TARGET_SECONDS = 30.0
REDIS_DOWN_SECONDS = 2.0
DATABASE_DOWN_SECONDS = 5.0
SLOW_BLOB_DELAY_SECONDS = 0.2  # per forwarded chunk (64 KiB), both directions


@dataclass
class Fault:
    kind: str
    began: float  # monotonic
    wall: float = field(default_factory=time.time)  # epoch seconds, to match database times
    ended: float = 0.0  # the injected condition removed
    recovered: float | None = None  # the first verdict of an upload made after `ended`
    note: str = ""

    @property
    def recovery_seconds(self) -> float | None:
        return None if self.recovered is None else self.recovered - self.ended


def _inject(deployment: Deployment, kind: str, window: float) -> tuple[str, Callable[[], None] | None]:
    """Cause the fault and return once its condition is removed: a note, and what a process manager does
    afterwards (run while the probe already waits for a verdict)."""
    if kind == "inference worker SIGKILL":
        deployment.kill_worker(webhooks=False)
        return "a replacement started at once", lambda: deployment.start_worker(webhooks=False)
    if kind == "webhooks worker SIGKILL":
        deployment.kill_worker(webhooks=True)
        return "restarted at once", lambda: deployment.start_worker(webhooks=True)
    if kind == "server process SIGKILL":
        deployment.kill_server_child()
        return "restarted by its supervisor", None
    if kind == "Redis restart":
        deployment.redis.stop()
        time.sleep(REDIS_DOWN_SECONDS)
        deployment.redis.start()
        return f"{deployment.redis.kind} down {REDIS_DOWN_SECONDS:g} s, its data lost", None
    if kind == "database outage":
        if deployment.database is not None:
            deployment.database.stop()
            time.sleep(DATABASE_DOWN_SECONDS)
            deployment.database.start()
            return f"own mariadbd stopped, started again after {DATABASE_DOWN_SECONDS:g} s", None
        _hold_sqlite_lock(make_url(deployment.settings.resolved_database_url).database or "", DATABASE_DOWN_SECONDS)
        return f"SQLite file locked (exclusive transaction) for {DATABASE_DOWN_SECONDS:g} s", None
    if kind == "slow blob store":
        deployment.s3_proxy.delay_seconds = SLOW_BLOB_DELAY_SECONDS
        time.sleep(window)
        deployment.s3_proxy.delay_seconds = 0.0
        return f"S3 traffic delayed {SLOW_BLOB_DELAY_SECONDS:g} s per chunk for {window:g} s", None
    raise ValueError(kind)


def _hold_sqlite_lock(path: str, seconds: float) -> None:
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        connection.execute("ROLLBACK")
    finally:
        connection.close()


async def _probe(t: Traffic, account: Account, after: float) -> float | None:
    """Monotonic time of the first verdict of an upload begun after `after`, within RECOVERY_LIMIT_SECONDS."""
    async with t.channel() as channel:
        serial = 0
        while time.monotonic() - after < RECOVERY_LIMIT_SECONDS:
            serial += 1
            image_id = await upload(t.calls, channel, account, t.pool.next(), f"probe-{serial}.jpg", t.uploads)
            remaining = RECOVERY_LIMIT_SECONDS - (time.monotonic() - after)
            if image_id and remaining > 1 and await watch(t.calls, channel, account, image_id, t.uploads,
                                                          timeout=remaining):
                return time.monotonic()
            await asyncio.sleep(0.5)
    return None


async def run_faults(deployment: Deployment, t: Traffic, probe: Account, kinds: list[str], first_at: float,
                     spacing: float, slow_window: float) -> list[Fault]:
    """Each kind in turn, the first at monotonic first_at and the others `spacing` seconds apart (later when a
    recovery took longer); stops early when traffic stops."""
    faults: list[Fault] = []
    for i, kind in enumerate(kinds):
        wait = max(first_at + i * spacing, (faults[-1].recovered or 0.0) if faults else 0.0) - time.monotonic()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(t.stop.wait(), wait)
        if t.stop.is_set():
            break
        fault = Fault(kind, time.monotonic())
        faults.append(fault)
        fault.note, aftermath = await asyncio.to_thread(_inject, deployment, kind, slow_window)
        fault.ended = time.monotonic()
        helper = threading.Thread(target=aftermath, daemon=True) if aftermath else None
        if helper is not None:
            helper.start()
        fault.recovered = await _probe(t, probe, fault.ended)
        if helper is not None:
            await asyncio.to_thread(helper.join, 120)
    return faults
