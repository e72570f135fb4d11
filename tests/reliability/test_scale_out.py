"""Two server processes and two workers on one MariaDB, one Redis and one S3-compatible bucket (a real S3
server process), as users grow past one machine: upload through one server, watch and read through the
other; lockout counts across both; a revoked service token is refused by both; either worker takes any
analysis, reading the bytes from the bucket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from grpc import aio
from pixelcheck.v1 import auth_pb2, auth_pb2_grpc, results_pb2, results_pb2_grpc
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from pixelcheck.blobs import BlobRow, make_blob_store
from pixelcheck.blobs.s3 import S3BlobStore
from pixelcheck.bootstrap import build_container
from pixelcheck.db import make_engine
from pixelcheck.settings import Settings
from tests.conftest import s3_settings_for
from tests.e2e.flows import PASSWORD, bearer, fails, new_user, sign_in, sign_up, unique_username
from tests.e2e.uploads import state_name, verdict_part, watch
from tests.processes import ServerProcess, WorkerProcess
from tests.reliability.conftest import BACKEND
from tests.reliability.steps import small_jpegs, try_upload

pytestmark = [
    pytest.mark.reliability, pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.skipif(BACKEND == "sqlite", reason="scale-out spans machines, which share a networked MariaDB "
                       "and Redis; a SQLite file belongs to one machine (set PIXELCHECK_TEST_DATABASE_URL)"),
]

UPLOADS = 20
MAX_FAILURES = 5


@dataclass
class Cluster:
    servers: list[ServerProcess]
    workers: list[WorkerProcess]
    channels: list[aio.Channel]


@pytest.fixture(scope="module")
def cluster_settings(reliability_settings: Settings, s3_endpoint_url: str) -> Settings:
    return s3_settings_for(reliability_settings.with_overrides(signin_max_failures=MAX_FAILURES), s3_endpoint_url)


@pytest.fixture(scope="module")
def processes(cluster_settings: Settings, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[list[ServerProcess], list[WorkerProcess]]]:
    settings = cluster_settings
    folder = Path(tmp_path_factory.mktemp("cluster"))
    servers = [ServerProcess(settings, folder / f"server-{n}.log") for n in "ab"]
    workers = [WorkerProcess(settings, folder / f"worker-{n}.log", name=n) for n in "ab"]
    try:
        for process in (*servers, *workers):
            process.start()
        yield servers, workers
    finally:
        for process in (*workers, *servers):
            process.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def cluster(processes: tuple[list[ServerProcess], list[WorkerProcess]]) -> AsyncIterator[Cluster]:
    servers, workers = processes
    channels = [aio.insecure_channel(s.address) for s in servers]
    try:
        yield Cluster(servers, workers, channels)
    finally:
        for channel in channels:
            await channel.close()


def _analyses_done_by(worker: WorkerProcess) -> int:
    return worker.log_path.read_text(errors="replace").count(": 'succeeded'")


async def test_uploads_through_one_server_are_watched_and_read_through_the_other_by_either_worker(
        cluster: Cluster, cluster_settings: Settings) -> None:
    one, other = cluster.channels
    user = await new_user(auth_pb2_grpc.AuthServiceStub(one))
    outcomes = await asyncio.gather(*(try_upload(one, user.metadata, data, f"spread-{i}.jpg")
                                      for i, data in enumerate(small_jpegs(UPLOADS, seed=9300))))
    assert [o.code for o in outcomes] == [grpc.StatusCode.OK] * UPLOADS
    watched = await asyncio.gather(*(watch(other, user.metadata, o.image_id, timeout=120) for o in outcomes))
    assert [state_name(events[-1].state) for events in watched] == ["SUCCEEDED"] * UPLOADS
    results = results_pb2_grpc.ResultsServiceStub(other)
    for outcome, events in zip(outcomes, watched, strict=True):
        read = await results.GetResult(results_pb2.GetResultRequest(image_id=outcome.image_id),
                                       metadata=user.metadata)
        assert verdict_part(read.result) == verdict_part(events[-1].result)
    assert all(_analyses_done_by(w) > 0 for w in cluster.workers), [_analyses_done_by(w) for w in cluster.workers]
    # The bytes live in the bucket, not in the database.
    store = make_blob_store(cluster_settings, sessionmaker())
    assert isinstance(store, S3BlobStore)
    for outcome in outcomes:
        reader = store.open(f"image/{outcome.image_id}", 1 << 20)
        assert reader is not None
        reader.close()
    engine = make_engine(cluster_settings.resolved_database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            keys = [f"image/{o.image_id}" for o in outcomes]  # other modules share this database
            assert connection.scalar(select(func.count()).select_from(BlobRow).where(BlobRow.key.in_(keys))) == 0
    finally:
        engine.dispose()


async def test_a_service_token_revoked_by_the_operator_is_refused_by_both_server_processes(
        cluster: Cluster) -> None:
    operator = build_container(cluster.servers[0].settings, role="cli")  # what `pixelcheck token …` uses
    try:
        issued = operator.service_tokens.issue(name=unique_username("svc"), ttl_seconds=3600,
                                               issued_by="operator:test")
        auths = [auth_pb2_grpc.AuthServiceStub(c) for c in cluster.channels]
        me, token = auth_pb2.GetCurrentUserRequest(), bearer(issued.token)
        for auth in auths:
            assert (await auth.GetCurrentUser(me, metadata=token)).user.id == issued.account.id
        operator.service_tokens.revoke(token_id=issued.record.id, revoked_by="operator:test")
    finally:
        operator.close()
    bound = cluster.servers[0].settings.revocation_refresh_seconds + 3.0  # one refresh, plus slack
    started = time.monotonic()
    for auth in auths:
        while True:
            try:
                await auth.GetCurrentUser(me, metadata=token)
            except aio.AioRpcError as error:
                assert error.code() is grpc.StatusCode.UNAUTHENTICATED
                break
            assert time.monotonic() - started < bound, "a server still accepts the revoked token"
            await asyncio.sleep(0.1)


async def test_sign_in_lockout_counts_failures_made_on_both_servers(cluster: Cluster) -> None:
    # Last in the module: the failures also lock the shared peer 127.0.0.1 for this module's namespace.
    auths = [auth_pb2_grpc.AuthServiceStub(c) for c in cluster.channels]
    username = unique_username("spread")
    await sign_up(auths[0], username)
    for attempt in range(MAX_FAILURES):
        failure = await fails(sign_in(auths[attempt % 2], username, "not-the-password-1"))
        assert failure.code is grpc.StatusCode.UNAUTHENTICATED
    for auth in auths:
        locked = await fails(sign_in(auth, username, PASSWORD))
        assert locked.code is grpc.StatusCode.RESOURCE_EXHAUSTED and locked.reason == "TOO_MANY_SIGNIN_ATTEMPTS"
        assert locked.retry_delay_seconds is not None and locked.retry_delay_seconds > 0
