"""Fair scheduling, requested region maps and admission control through the real server and a real Celery
worker: one account's backlog delays its own analyses, not another account's; a map somebody asks for is made
ahead of other accounts' backlogs; uploads past the cap are refused before anything is stored."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import grpc
import pytest
import redis
from pixelcheck.v1 import ingestion_pb2, ingestion_pb2_grpc, results_pb2, results_pb2_grpc
from sqlalchemy import select

from pixelcheck.analysis.models import Analysis
from pixelcheck.keys import RedisKeys
from pixelcheck.scheduling.prompt_lane import can_lower_threads
from pixelcheck.settings import Settings
from pixelcheck.worker import IDLE_MAP_PRIORITY, broker_lists
from tests import images
from tests.e2e.flows import SignedInUser, fails, new_user
from tests.e2e.servers import LiveServer
from tests.e2e.uploads import state_name, upload, watch
from tests.processes import WorkerProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")

BACKLOG = 10
CAP = 12


@pytest.fixture(scope="module")
def server_settings(base_settings: Settings, migrated_database_url: str) -> Settings:
    """A cap of CAP queued + running analyses per USER; the module's own Redis namespace (its worker must
    not take other modules' tasks)."""
    return base_settings.with_overrides(
        signin_max_failures=10_000, signin_address_max_failures=10_000,
        redis_key_prefix=f"{base_settings.redis_key_prefix}-fair",
        admission_pending_caps=f"USER={CAP},PROFESSIONAL=2000,ADMIN=2000,SERVICE=10000")


@contextmanager
def running_worker(server: LiveServer, folder: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(server.settings, folder / "worker.log").start()
    try:
        yield process
    finally:
        process.stop()


async def upload_many(server: LiveServer, user: SignedInUser, count: int, seed: int) -> list[str]:
    return [(await upload(server.channel, user.metadata, images.jpeg(320, 256, seed=seed + n), f"a{n}.jpg")).image.id
            for n in range(count)]


async def finished(server: LiveServer, user: SignedInUser, image_ids: list[str]) -> int:
    stub = results_pb2_grpc.ResultsServiceStub(server.channel)
    states = [state_name((await stub.GetResult(results_pb2.GetResultRequest(image_id=i),
                                               metadata=user.metadata)).result.state) for i in image_ids]
    return sum(state in ("SUCCEEDED", "FAILED") for state in states)


def finished_before(server: LiveServer, image_ids: list[str], other: str) -> int:
    """How many of image_ids the worker finished before it finished `other` (by the stored finish times, not
    by when this test looked)."""
    with server.container.read_sessions() as session:
        until = session.scalar(select(Analysis.finish_time).where(Analysis.image_id == other))
        times = list(session.scalars(select(Analysis.finish_time).where(Analysis.image_id.in_(image_ids))))
    assert until is not None
    return sum(1 for t in times if t is not None and t < until)


def idle_maps_queued(settings: Settings) -> int:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        return int(client.llen(broker_lists(RedisKeys(settings.redis_key_prefix))[IDLE_MAP_PRIORITY]))
    finally:
        client.close()


async def test_another_accounts_upload_is_analysed_between_a_backlogs_analyses_not_after_them(
        live_server: LiveServer, tmp_path: Path) -> None:
    alice, bob = await new_user(live_server.auth, "alice"), await new_user(live_server.auth, "bob")
    backlog = await upload_many(live_server, alice, BACKLOG, seed=100)  # no worker yet: all of it waits
    bobs = (await upload(live_server.channel, bob.metadata, images.jpeg(320, 256, seed=99), "b.jpg")).image.id
    with running_worker(live_server, tmp_path):
        events = await watch(live_server.channel, bob.metadata, bobs, timeout=120)
        assert state_name(events[-1].state) == "SUCCEEDED"
        done_before_bob = finished_before(live_server, backlog, bobs)
        # First in, first out, bob would wait for all BACKLOG; taking turns, for at most alice's first one
        # (plus one already handed to the worker while bob's upload arrived).
        assert done_before_bob <= 2, f"{done_before_bob} of alice's analyses ran before bob's"
        deadline = asyncio.get_running_loop().time() + 180
        while await finished(live_server, alice, backlog) < BACKLOG:
            assert idle_maps_queued(live_server.settings) <= 1  # unrequested map work never piles up
            assert asyncio.get_running_loop().time() < deadline, "alice's backlog did not drain"
            await asyncio.sleep(0.2)


def run_times(server: LiveServer, image_ids: list[str]) -> dict[str, tuple[datetime, datetime]]:
    """(start, finish) of each finished analysis, as the worker stored them."""
    with server.container.read_sessions() as session:
        rows = session.execute(select(Analysis.image_id, Analysis.start_time, Analysis.finish_time)
                               .where(Analysis.image_id.in_(image_ids))).all()
    return {image_id: (start, finish) for image_id, start, finish in rows if start and finish}


async def until_one_runs(server: LiveServer, image_ids: list[str], timeout: float = 120) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        with server.container.read_sessions() as session:
            if session.scalar(select(Analysis.image_id).where(Analysis.image_id.in_(image_ids),
                                                               Analysis.state == "RUNNING").limit(1)):
                return
        assert asyncio.get_running_loop().time() < deadline, "the worker started none of the backlog"
        await asyncio.sleep(0.02)


@pytest.mark.skipif(not can_lower_threads(), reason="the prompt lane needs per-thread CPU priorities (Linux)")
async def test_with_its_only_worker_busy_on_a_backlog_another_accounts_picture_is_analysed_beside_it_not_after(
        live_server: LiveServer, tmp_path: Path) -> None:
    carol, dave = await new_user(live_server.auth, "carol"), await new_user(live_server.auth, "dave")
    backlog = [(await upload(live_server.channel, carol.metadata, images.jpeg(2400, 1800, seed=300 + n),
                             f"c{n}.jpg")).image.id for n in range(8)]
    with running_worker(live_server, tmp_path):  # one solo worker: one task at a time
        await until_one_runs(live_server, backlog)
        daves = (await upload(live_server.channel, dave.metadata, images.jpeg(320, 256, seed=98), "d.jpg")).image.id
        events = await watch(live_server.channel, dave.metadata, daves, timeout=120)
        assert state_name(events[-1].state) == "SUCCEEDED"
        deadline = asyncio.get_running_loop().time() + 180
        while await finished(live_server, carol, backlog) < len(backlog):
            assert asyncio.get_running_loop().time() < deadline, "carol's backlog did not drain"
            await asyncio.sleep(0.2)
    times = run_times(live_server, [*backlog, daves])
    started, ended = times[daves]
    beside = [i for i in backlog if times[i][0] < ended and started < times[i][1]]
    # Without the prompt lane the worker's one task thread would start dave's picture only after the
    # analysis it was running ended; the lane starts it while that one still runs.
    assert beside, "dave's picture waited for the backlog's running analysis to end"
    assert len(times) == len(backlog) + 1  # and every analysis finished, each once


async def test_a_requested_region_map_is_made_ahead_of_another_accounts_backlog(
        live_server: LiveServer, tmp_path: Path) -> None:
    carol, dave = await new_user(live_server.auth, "carol"), await new_user(live_server.auth, "dave")
    daves = (await upload(live_server.channel, dave.metadata, images.jpeg(1024, 768, seed=7), "d.jpg")).image.id
    backlog = await upload_many(live_server, carol, BACKLOG, seed=300)
    results = results_pb2_grpc.ResultsServiceStub(live_server.channel)
    request = results_pb2.GetRegionMapRequest(image_id=daves)
    with running_worker(live_server, tmp_path):
        verdict = (await watch(live_server.channel, dave.metadata, daves, timeout=120))[-1]
        assert state_name(verdict.state) == "SUCCEEDED"
        first = await fails(results.GetRegionMap(request, metadata=dave.metadata))  # this asks for the map
        assert first.reason == "REGION_MAP_NOT_READY" and first.retry_delay_seconds is not None
        deadline = asyncio.get_running_loop().time() + 120
        while True:
            try:
                picture = await results.GetRegionMap(request, metadata=dave.metadata)
                break
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
            assert asyncio.get_running_loop().time() < deadline, "the requested map was not made"
            await asyncio.sleep(0.2)
        assert picture.region_map.progress == 1.0 and picture.png.startswith(b"\x89PNG")
    # The worker's own times (this test may notice READY a little late on a busy machine): when the map was
    # done, most of carol's backlog had not been analysed yet.
    with live_server.container.read_sessions() as session:
        map_done = session.scalar(select(Analysis.region_map_update_time).where(Analysis.image_id == daves))
        finish_times = list(session.scalars(select(Analysis.finish_time).where(Analysis.image_id.in_(backlog))))
    assert map_done is not None
    done_before_map = sum(1 for t in finish_times if t is not None and t < map_done)
    assert done_before_map <= BACKLOG // 2, f"{done_before_map} of carol's analyses ran before the requested map"


async def test_an_upload_past_the_cap_is_refused_with_a_retry_delay_and_nothing_is_stored(
        live_server: LiveServer) -> None:
    erin = await new_user(live_server.auth, "erin")
    await upload_many(live_server, erin, CAP, seed=500)  # no worker: all CAP stay queued
    refused = await fails(upload(live_server.channel, erin.metadata, images.jpeg(320, 256, seed=999), "over.jpg"))
    assert (refused.code, refused.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "ANALYSIS_QUEUE_FULL")
    assert refused.retry_delay_seconds is not None and refused.retry_delay_seconds > 0
    assert refused.info.metadata["limit"] == str(CAP)
    listed = await ingestion_pb2_grpc.IngestionServiceStub(live_server.channel).ListImages(
        ingestion_pb2.ListImagesRequest(), metadata=erin.metadata)
    assert listed.total_size == CAP and "over.jpg" not in {i.filename for i in listed.images}
    other = await new_user(live_server.auth, "frank")
    assert (await upload(live_server.channel, other.metadata, images.jpeg(320, 256, seed=998), "ok.jpg")).image.id


async def test_an_import_past_the_cap_is_refused_before_the_url_is_even_checked(live_server: LiveServer) -> None:
    gail = await new_user(live_server.auth, "gail")
    await upload_many(live_server, gail, CAP, seed=600)  # no worker: all CAP stay queued
    # Without the cap this URL would be refused as URL_ADDRESS_NOT_ALLOWED: admission comes first.
    refused = await fails(ingestion_pb2_grpc.IngestionServiceStub(live_server.channel).ImportImage(
        ingestion_pb2.ImportImageRequest(url="http://127.0.0.1/over.jpg"), metadata=gail.metadata))
    assert (refused.code, refused.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "ANALYSIS_QUEUE_FULL")
    assert refused.retry_delay_seconds is not None and refused.retry_delay_seconds > 0
    listed = await ingestion_pb2_grpc.IngestionServiceStub(live_server.channel).ListImages(
        ingestion_pb2.ListImagesRequest(), metadata=gail.metadata)
    assert listed.total_size == CAP
