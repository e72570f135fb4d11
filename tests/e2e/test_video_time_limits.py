"""A clip's analysis takes longer than a picture's: the tasks that run analyses have the clip time limit
(video_time_limit_seconds) on a real prefork worker, where Celery enforces limits, while every other task keeps
task_time_limit_seconds; a clip that runs past its limit fails with that reason, not as a detector fault."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pixelcheck.v1 import results_pb2

from pixelcheck.analysis.pipeline import TIME_LIMIT_REASON
from pixelcheck.settings import Settings
from tests import videos
from tests.e2e.flows import new_user
from tests.e2e.servers import LiveServer
from tests.e2e.uploads import state_name, upload, watch
from tests.processes import WorkerProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def server_settings(base_settings: Settings, migrated_database_url: str) -> Settings:
    # Every task but an analysis gets 2 s (1 s soft): less than the clip below takes to analyse (~3 s here).
    return base_settings.with_overrides(task_time_limit_seconds=2, video_time_limit_seconds=300)


@pytest.fixture(scope="module")
def slow_clip() -> bytes:
    return videos.clip("mp4-h264", seconds=30, fps=10, width=640, height=360)  # 30 frames read by the model


@pytest.fixture
def prefork_worker(live_server: LiveServer, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[WorkerProcess]:
    overrides = getattr(request, "param", {})
    process = WorkerProcess(live_server.settings.with_overrides(**overrides), tmp_path / "worker.log",
                            pool="prefork").start()
    try:
        yield process
    finally:
        process.stop()


async def test_a_clip_that_takes_longer_than_the_task_limit_is_analysed_within_the_clip_limit(
        live_server: LiveServer, prefork_worker: WorkerProcess, slow_clip: bytes) -> None:
    user = await new_user(live_server.auth)
    response = await upload(live_server.channel, user.metadata, slow_clip, "long.mp4", content_type="video/mp4")
    final = (await watch(live_server.channel, user.metadata, response.image.id, timeout=120))[-1].result
    assert state_name(final.state) == "SUCCEEDED", final.failure_reason
    assert final.media_kind == results_pb2.MEDIA_KIND_VIDEO and final.timeline.frames_read == 30
    assert final.analysis_duration.ToMilliseconds() > 1000  # past the soft limit (1 s) every other task has


@pytest.mark.parametrize("prefork_worker", [{"video_time_limit_seconds": 2}], indirect=True)
async def test_a_clip_past_the_clip_limit_fails_saying_so(live_server: LiveServer, prefork_worker: WorkerProcess,
                                                         slow_clip: bytes) -> None:
    user = await new_user(live_server.auth)
    response = await upload(live_server.channel, user.metadata, slow_clip, "too-long.mp4", content_type="video/mp4")
    final = (await watch(live_server.channel, user.metadata, response.image.id, timeout=120))[-1].result
    assert state_name(final.state) == "FAILED" and final.failure_reason == TIME_LIMIT_REASON
