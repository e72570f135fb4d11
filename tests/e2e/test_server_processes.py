"""`pixelcheck serve --processes 2` as an operator sees it: both children serve one port, a killed child
is replaced, SIGTERM to the parent drains every child and the parent exits 0."""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pixelcheck.v1 import auth_pb2, auth_pb2_grpc, ingestion_pb2, ingestion_pb2_grpc

from pixelcheck.db import upgrade
from pixelcheck.settings import Settings
from tests import images
from tests.e2e.uploads import upload_messages
from tests.processes import ServerProcess, free_ports_in_a_row

PASSWORD = "violet-harbour-7421"
SERVICES = ["", *(f"pixelcheck.v1.{n}Service" for n in ("Auth", "Ingestion", "Results", "Reports", "Audit"))]


def children_of(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return sorted(int(p) for p in text.split())


def wait_for(condition, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def serving_everywhere(address: str, connections: int = 6) -> bool:
    """Health SERVING for every service, asked over several connections (so of several children)."""
    for _ in range(connections):
        with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for name in SERVICES:
                try:
                    status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
                except grpc.RpcError:
                    return False
                if status != health_pb2.HealthCheckResponse.SERVING:
                    return False
    return True


def rpc_calls_counted(metrics_port: int) -> float:
    """The sum of pixelcheck_rpc_calls_total on one child's Prometheus endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
        lines = reply.read().decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("pixelcheck_rpc_calls_total{"))


def metrics_answer(metrics_port: int) -> bool:
    try:
        rpc_calls_counted(metrics_port)
    except OSError:  # not listening yet (URLError is an OSError)
        return False
    return True


@pytest.fixture
def connection_age() -> float:
    """PIXELCHECK_GRPC_MAX_CONNECTION_AGE_SECONDS of the supervised servers; a test overrides it by parametrizing."""
    return 300.0


@pytest.fixture
def supervised(base_settings: Settings, database_url: str, tmp_path: Path,
               connection_age: float) -> Iterator[ServerProcess]:
    upgrade(database_url)
    settings = base_settings.with_overrides(
        server_processes=2, grace_seconds=8.0, metrics_port=free_ports_in_a_row(2), signin_max_failures=10_000,
        redis_key_prefix=f"{base_settings.redis_key_prefix}-{tmp_path.name}",
        grpc_max_connection_age_seconds=connection_age)
    process = ServerProcess(settings, tmp_path / "server.log").start()
    try:
        wait_for(lambda: len(children_of(process.pid)) == 2 and serving_everywhere(process.address), 60,
                 "both server processes SERVING")
        yield process
    finally:
        process.stop()


def signed_in_token(address: str, username: str) -> str:
    with grpc.insecure_channel(address) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        auth.SignUp(auth_pb2.SignUpRequest(username=username, email=f"{username}@example.org", password=PASSWORD))
        return auth.SignIn(auth_pb2.SignInRequest(login=username, password=PASSWORD)).access_token


def current_user_over_new_connections(address: str, token: str, count: int) -> list[str]:
    names = []
    for _ in range(count):
        with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            reply = auth_pb2_grpc.AuthServiceStub(channel).GetCurrentUser(
                auth_pb2.GetCurrentUserRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=10)
            names.append(reply.user.username)
    return names


def test_two_children_share_the_port_and_both_serve_calls(supervised: ServerProcess) -> None:
    token = signed_in_token(supervised.address, "procs_share")
    assert current_user_over_new_connections(supervised.address, token, 24) == ["procs_share"] * 24
    base = supervised.settings.metrics_port
    # Each child counts the calls it served on its own endpoint (metrics port + child index): both served.
    counted = [rpc_calls_counted(base), rpc_calls_counted(base + 1)]
    assert all(n > 0 for n in counted), counted


def test_a_killed_child_is_replaced_and_calls_go_on(supervised: ServerProcess) -> None:
    token = signed_in_token(supervised.address, "procs_restart")
    before = children_of(supervised.pid)
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    after = wait_for(lambda: (c := children_of(supervised.pid)) and len(c) == 2 and victim not in c and c, 60,
                     "a new child")
    assert before[1] in after
    wait_for(lambda: serving_everywhere(supervised.address), 60, "SERVING again on every connection")
    assert current_user_over_new_connections(supervised.address, token, 8) == ["procs_restart"] * 8
    assert supervised.running


def test_sigterm_to_the_parent_drains_an_upload_in_flight_and_exits_zero(supervised: ServerProcess) -> None:
    token = signed_in_token(supervised.address, "procs_drain")
    children = children_of(supervised.pid)
    data = images.jpeg(1600, 1200, seed=19)
    terminated = threading.Event()

    def slow_messages() -> Iterator[ingestion_pb2.UploadImageRequest]:
        for number, message in enumerate(upload_messages(data, chunk=64 * 1024)):
            if number == 2:
                supervised.signal(signal.SIGTERM)  # the parent only: it forwards the signal
                terminated.set()
            if number >= 2:
                time.sleep(0.1)
            yield message

    with grpc.insecure_channel(supervised.address) as channel:
        stub = ingestion_pb2_grpc.IngestionServiceStub(channel)
        response = stub.UploadImage(slow_messages(), metadata=(("authorization", f"Bearer {token}"),), timeout=30)
    assert terminated.is_set() and response.image.size_bytes == len(data)
    assert supervised.wait(40) == 0
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]  # each child ended and was reaped


@pytest.mark.parametrize("connection_age", [0.5])
def test_one_long_lived_channel_moves_between_children_as_its_connection_ages_and_no_call_fails(
        supervised: ServerProcess) -> None:
    token = signed_in_token(supervised.address, "procs_aging")
    base = supervised.settings.metrics_port
    # Each child opens its metrics endpoint after it serves gRPC: wait for both before counting.
    wait_for(lambda: all(metrics_answer(port) for port in (base, base + 1)), 30, "both children's metrics")
    before = [rpc_calls_counted(base), rpc_calls_counted(base + 1)]
    data = images.jpeg(640, 480, seed=23)

    def slow_messages() -> Iterator[ingestion_pb2.UploadImageRequest]:
        for message in upload_messages(data, chunk=16 * 1024):
            time.sleep(0.1)  # the upload outlives several connection ages
            yield message

    metadata = (("authorization", f"Bearer {token}"),)
    with grpc.insecure_channel(supervised.address) as channel:  # one channel, as a long-running client keeps
        uploaded = ingestion_pb2_grpc.IngestionServiceStub(channel).UploadImage.future(
            slow_messages(), metadata=metadata, timeout=60)
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        names = []
        ends = time.monotonic() + 8
        while time.monotonic() < ends:
            names.append(auth.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), metadata=metadata,
                                             timeout=10).user.username)
            time.sleep(0.05)
        assert uploaded.result().image.size_bytes == len(data)
    assert set(names) == {"procs_aging"} and len(names) > 40
    served = [rpc_calls_counted(base) - before[0], rpc_calls_counted(base + 1) - before[1]]
    assert all(n > 0 for n in served), served  # one channel, yet both children served its calls
