"""A worker SIGKILLed mid-analysis under load: the reconciler (beat) re-finds what it held, another worker
finishes it, and every analysis succeeds exactly once."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.settings import Settings
from tests.e2e.conftest import start_live_server
from tests.e2e.flows import new_user
from tests.processes import BeatProcess, WorkerProcess
from tests.reliability.conftest import Launcher
from tests.reliability.steps import (
    analysis_states,
    count_states,
    small_jpegs,
    terminal_events,
    try_upload,
    wait_until_finished,
)

pytestmark = [pytest.mark.reliability, pytest.mark.asyncio(loop_scope="session")]

UPLOADS = 50


async def test_sigkilled_worker_loses_no_analysis_and_each_succeeds_exactly_once(
        reliability_settings: Settings, launcher: Launcher) -> None:
    settings = reliability_settings
    server = await start_live_server(settings)
    try:
        launcher.keep(BeatProcess(settings, launcher.log("beat"))).start()
        user = await new_user(server.auth)
        async with terminal_events(settings) as published:
            outcomes = await asyncio.gather(*(try_upload(server.channel, user.metadata, data, f"load-{i}.jpg")
                                              for i, data in enumerate(small_jpegs(UPLOADS, seed=5000))))
            assert [o.code for o in outcomes] == [grpc.StatusCode.OK] * UPLOADS
            ids = [o.image_id for o in outcomes]
            sessions = server.container.read_sessions
            interrupted: list[str] = []
            for attempt in range(5):  # an analysis may finish between seeing it RUNNING and the kill: retry
                doomed = launcher.keep(WorkerProcess(settings, launcher.log(f"doomed-{attempt}"),
                                                     name=f"doomed{attempt}")).start()
                interrupted = await _kill_mid_analysis(doomed, sessions, ids)
                if interrupted:
                    break
            assert interrupted, "no worker was caught mid-analysis in 5 tries"

            launcher.keep(WorkerProcess(settings, launcher.log("worker-b"), name="b")).start()
            states = await wait_until_finished(sessions, ids, timeout=180)
            await published.wait_for(ids)

        assert count_states(states) == {"SUCCEEDED": UPLOADS}, count_states(states)
        assert all(states[i][1] >= 2 for i in interrupted)  # claimed again after the kill
        assert {i: published.counts[i] for i in ids} == dict.fromkeys(ids, 1)  # one terminal event each
    finally:
        await server.stop()


async def _kill_mid_analysis(worker: WorkerProcess, sessions: sessionmaker[Session], ids: list[str]) -> list[str]:
    """SIGKILL worker as soon as it holds an analysis; the ids still RUNNING after the kill."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = await asyncio.to_thread(analysis_states, sessions, ids)
        if any(state == "RUNNING" for state, _ in states.values()):
            break
        await asyncio.sleep(0.01)
    worker.kill()
    states = await asyncio.to_thread(analysis_states, sessions, ids)
    return [i for i, (state, _) in states.items() if state == "RUNNING"]
