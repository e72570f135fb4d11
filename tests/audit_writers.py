"""Processes that append to one audit chain at the same time, the way several servers and workers do.

Each writer records calls through a started AuditRecorder (small batches, so many transactions) and appends
RecordEvent-style events synchronously in between: every tenth call, one `test.direct` event.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

WRITER = """
import sys
import time
from pathlib import Path
from pixelcheck.api.calls import CallInfo
from pixelcheck.audit.recorder import AuditRecorder
from pixelcheck.audit.service import AuditTrail
from pixelcheck.db import make_engine, make_session_factory
from pixelcheck.settings import Settings

url, name, count, start_at, pause, stop_file = sys.argv[1:7]
count, start_at, pause, stop = int(count), float(start_at), float(pause), Path(stop_file) if stop_file else None
settings = Settings.from_env(environ={}, env_file="/nonexistent").with_overrides(
    database_url=url, audit_batch_size=7, audit_flush_interval_seconds=0.001)
engine = make_engine(url, pool_size=2)
sessions = make_session_factory(engine)
recorder = AuditRecorder(sessions, settings)
trail = AuditTrail(sessions, make_session_factory(engine, readonly=True), settings)
recorder.start()
time.sleep(max(0.0, start_at - time.time()))  # the writers begin together, whatever their start-up
n = 0
while n < count and not (stop is not None and stop.exists()):
    time.sleep(pause)
    recorder.record_call(CallInfo(method="/m", request_id=f"{name}-{n}", peer=name), "OK", n)
    if n % 10 == 0:
        trail.record_event(actor_id=name, action="test.direct", target=f"{name}-{n}", payload={"n": n})
    n += 1
recorder.close()
print(n, recorder.written, recorder.dropped)
"""


def start_writers(database_url: str, names: tuple[str, ...], *, count: int, pause: float = 0.0005,
                  stop_file: Path | None = None, start_in: float = 4.0) -> list[subprocess.Popen[str]]:
    """Start one writer process per name; each makes count calls (or stops early once stop_file exists).

    A writer prints "calls written dropped" when it ends.
    """
    start_at = str(time.time() + start_in)
    return [subprocess.Popen([sys.executable, "-c", WRITER, database_url, name, str(count), start_at, str(pause),
                              str(stop_file or "")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name in names]


def finish_writers(writers: list[subprocess.Popen[str]], timeout: float = 240) -> list[tuple[int, int, int]]:
    """Wait for every writer; (calls made, events written by its recorder, events dropped) of each."""
    results = []
    for writer in writers:
        out, err = writer.communicate(timeout=timeout)
        assert writer.returncode == 0, err
        calls, written, dropped = (int(part) for part in out.split())
        results.append((calls, written, dropped))
    return results
