"""Redis restarted (and emptied) during a burst of uploads: uploads succeed or fail with UNAVAILABLE, and
every accepted upload is analysed once Redis is back. Runs on a private Redis: the shared one is never
touched."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest
from pixelcheck.v1 import common_pb2

from pixelcheck.embedded_redis import EmbeddedRedis
from pixelcheck.settings import Settings
from tests.e2e.conftest import start_live_server
from tests.e2e.flows import new_user
from tests.e2e.uploads import watch
from tests.processes import BeatProcess, WorkerProcess
from tests.reliability.conftest import Launcher
from tests.reliability.steps import UploadOutcome, count_states, small_jpegs, try_upload, wait_until_finished

pytestmark = [pytest.mark.reliability, pytest.mark.asyncio(loop_scope="session")]

UPLOADS = 40
SPACING_SECONDS = 0.1  # the burst lasts 4 s; Redis is down from 1 s to 3 s into it
OUTAGE_STARTS_AFTER = 1.0
OUTAGE_SECONDS = 2.0


class PrivateRedis:
    """A Redis of the test's own that can go down and come back empty on the same port (its data lost)."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._server = EmbeddedRedis(folder).start()
        self.port, self.url = self._server.port, self._server.url

    async def go_down(self) -> None:
        await asyncio.to_thread(self._server.stop)

    async def come_back_empty(self) -> None:
        self._server = await asyncio.to_thread(EmbeddedRedis(self._folder, port=self.port).start)

    def stop(self) -> None:
        self._server.stop()


async def test_redis_restart_during_uploads_fails_only_with_unavailable_and_loses_no_accepted_upload(
        reliability_settings: Settings, launcher: Launcher, tmp_path: Path) -> None:
    broker = PrivateRedis(tmp_path / "redis")
    settings = reliability_settings.with_overrides(redis_url=broker.url)
    server = await start_live_server(settings)
    try:
        launcher.keep(BeatProcess(settings, launcher.log("beat"))).start()
        launcher.keep(WorkerProcess(settings, launcher.log("worker"))).start()
        user = await new_user(server.auth)  # sign-in counts failures in Redis: done before the outage
        payloads = small_jpegs(UPLOADS, seed=7000)

        async def paced_upload(i: int) -> UploadOutcome:
            await asyncio.sleep(i * SPACING_SECONDS)
            return await try_upload(server.channel, user.metadata, payloads[i], f"burst-{i}.jpg")

        burst = asyncio.gather(*(paced_upload(i) for i in range(UPLOADS)))
        await asyncio.sleep(OUTAGE_STARTS_AFTER)
        await broker.go_down()
        await asyncio.sleep(OUTAGE_SECONDS)
        await broker.come_back_empty()  # the queue is lost
        outcomes = await burst

        codes = {o.code for o in outcomes}
        assert codes <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, codes
        accepted = [o.image_id for o in outcomes if o.code is grpc.StatusCode.OK]
        assert len(accepted) >= UPLOADS // 2  # the database was up all along: most uploads are accepted
        states = await wait_until_finished(server.container.read_sessions, accepted, timeout=150)
        assert count_states(states) == {"SUCCEEDED": len(accepted)}, count_states(states)
    finally:
        await server.stop()
        launcher.stop_all()  # before the broker goes: a worker shuts down quickly only while it can reach it
        broker.stop()


async def test_analyses_waiting_when_redis_lost_its_data_are_run_at_the_next_reconciler_pass_not_a_stale_period_later(
        reliability_settings: Settings, launcher: Launcher, tmp_path: Path) -> None:
    # A stale period of 60 s (beat reconciles every 15 s): before, the analyses that waited in the fair queue
    # when Redis lost it were found only once they had been unchanged for 60 s.
    broker = PrivateRedis(tmp_path / "redis")
    settings = reliability_settings.with_overrides(redis_url=broker.url, analysis_stale_seconds=60)
    server = await start_live_server(settings)
    try:
        launcher.keep(BeatProcess(settings, launcher.log("beat"))).start()
        user = await new_user(server.auth)
        accepted_at = time.monotonic()
        outcomes = [await try_upload(server.channel, user.metadata, data, f"waiting-{i}.jpg")
                    for i, data in enumerate(small_jpegs(5, seed=7100))]
        accepted = [o.image_id for o in outcomes if o.code is grpc.StatusCode.OK]
        assert len(accepted) == 5, [o.code for o in outcomes]
        await broker.go_down()  # no worker yet: all five wait in the fair queue, and are lost
        await broker.come_back_empty()
        launcher.keep(WorkerProcess(settings, launcher.log("worker"))).start()

        states = await wait_until_finished(server.container.read_sessions, accepted, timeout=45)
        assert count_states(states) == {"SUCCEEDED": 5}, count_states(states)
        assert time.monotonic() - accepted_at < 50  # the stale period alone is 60 s
    finally:
        await server.stop()
        launcher.stop_all()
        broker.stop()


async def test_a_watcher_hears_of_a_verdict_reached_while_redis_was_down_as_soon_as_redis_is_back(
        reliability_settings: Settings, tmp_path: Path) -> None:
    # The verdict's event is published while Redis is down, so pub/sub never carries it. Before, the watcher
    # learned of it only from its 15 s silence re-check; now the hub's new subscription tells it to re-read.
    broker = PrivateRedis(tmp_path / "redis")
    settings = reliability_settings.with_overrides(redis_url=broker.url, analysis_stale_seconds=120)
    server = await start_live_server(settings)
    try:
        user = await new_user(server.auth)
        outcome = await try_upload(server.channel, user.metadata, small_jpegs(1, seed=7200)[0], "lost-event.jpg")
        assert outcome.code is grpc.StatusCode.OK
        watcher = asyncio.create_task(watch(server.channel, user.metadata, outcome.image_id, timeout=60))
        await asyncio.sleep(1.0)  # the stream is open and has sent its snapshot (QUEUED)
        await broker.go_down()
        # A worker finishes the analysis while Redis is down: the database has the verdict, nobody hears of it.
        assert await asyncio.to_thread(server.container.analysis_pipeline.run, outcome.image_id) == "succeeded"
        await broker.come_back_empty()
        back = time.monotonic()
        events = await asyncio.wait_for(watcher, 30)
        assert events[-1].state == common_pb2.ANALYSIS_STATE_SUCCEEDED
        assert time.monotonic() - back < 8  # the silence re-check alone would take 15 s
    finally:
        await server.stop()
        broker.stop()
