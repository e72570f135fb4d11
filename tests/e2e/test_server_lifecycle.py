"""The server as an operator sees it: reflection, health, unknown methods, graceful SIGTERM."""

from __future__ import annotations

import signal
import threading
import time
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
from tests.processes import ServerProcess, free_port

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICES = ["", *(f"pixelcheck.v1.{n}Service"
                  for n in ("Auth", "Ingestion", "Results", "Reports", "Audit", "Webhooks"))]


@pytest.fixture
def server(base_settings: Settings, database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    upgrade(database_url)
    # A key prefix of its own: other modules' deliberate sign-in failures from 127.0.0.1 must not lock us out.
    settings = base_settings.with_overrides(grace_seconds=8.0, redis_key_prefix=f"{base_settings.redis_key_prefix}-"
                                            f"{tmp_path.name}", signin_max_failures=10_000,
                                            signin_address_max_failures=10_000)
    process = ServerProcess(settings, tmp_path / "server.log").start()
    try:
        yield process
    finally:
        process.stop()


def test_every_service_and_reflection_is_listed_and_serving(server: ServerProcess) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in SERVICES:
            assert health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status == SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = list(reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
            list_services="")]), timeout=5))
        listed = {s.name for s in responses[0].list_services_response.service}
    assert {n for n in SERVICES if n} <= listed
    assert {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
            "grpc.reflection.v1.ServerReflection"} <= listed


def test_unknown_method_is_unimplemented(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary("/pixelcheck.v1.AuthService/DoesNotExist")
        with pytest.raises(grpc.RpcError) as caught:
            call(b"", timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_every_response_carries_the_request_id(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            auth.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), metadata=(("x-request-id", "trace-123"),))
        assert ("x-request-id", "trace-123") in tuple(caught.value.trailing_metadata())
        _, call = auth.SignUp.with_call(auth_pb2.SignUpRequest(
            username="lifecycle_rid", email="rid@example.org", password="violet-harbour-7421"))
        generated = dict(call.trailing_metadata())["x-request-id"]
        assert len(generated) >= 16


def test_sigterm_lets_an_upload_in_flight_finish_and_flips_health_first(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        auth.SignUp(auth_pb2.SignUpRequest(username="lifecycle_u", email="lc@example.org",
                                           password="violet-harbour-7421"))
        token = auth.SignIn(auth_pb2.SignInRequest(login="lifecycle_u", password="violet-harbour-7421")).access_token
        data = images.jpeg(1600, 1200, seed=9)
        terminated = threading.Event()

        def slow_messages() -> Iterator[ingestion_pb2.UploadImageRequest]:
            for number, message in enumerate(upload_messages(data, chunk=64 * 1024)):
                if number == 2:
                    server.signal(signal.SIGTERM)  # while the upload is in flight
                    terminated.set()
                if number >= 2:
                    time.sleep(0.1)
                yield message

        stub = ingestion_pb2_grpc.IngestionServiceStub(channel)
        started = time.monotonic()
        response = stub.UploadImage(slow_messages(), metadata=(("authorization", f"Bearer {token}"),), timeout=30)
        assert terminated.is_set() and response.image.size_bytes == len(data)
        assert time.monotonic() - started < 8.0 + 5.0
    assert server.wait(30) == 0


def test_health_flips_to_not_serving_on_sigterm(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=20)
        assert next(watch).status == SERVING
        server.signal(signal.SIGTERM)
        assert next(watch).status == NOT_SERVING


def statuses_of_a_server_that_never_serves(settings: Settings, log_path: Path) -> dict[str, int]:
    """Start a server that must not become SERVING overall; the health status of every service."""
    process = ServerProcess(settings, log_path)
    try:
        with pytest.raises(TimeoutError):
            process.start(timeout=6)  # it never reports SERVING
        with grpc.insecure_channel(process.address) as channel:
            # A loaded machine may take longer than that to start listening at all: wait for the port.
            grpc.channel_ready_future(channel).result(timeout=60)
            health = health_pb2_grpc.HealthStub(channel)
            return {name: health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
                    for name in SERVICES}
    finally:
        process.stop()


def test_health_is_not_serving_while_the_database_is_unreachable(base_settings: Settings, tmp_path: Path) -> None:
    unreachable = f"mysql+pymysql://root@127.0.0.1:{free_port()}/nothing"
    settings = base_settings.with_overrides(database_url=unreachable, grace_seconds=1.0)
    assert set(statuses_of_a_server_that_never_serves(settings, tmp_path / "server.log").values()) == {NOT_SERVING}


def test_health_is_not_serving_for_byte_services_while_the_s3_store_is_unreachable(
        base_settings: Settings, database_url: str, tmp_path: Path) -> None:
    upgrade(database_url)
    settings = base_settings.with_overrides(
        grace_seconds=1.0, blob_store="s3", s3_bucket="pixelcheck-nowhere", s3_region="us-east-1",
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}", s3_addressing_style="path",
        s3_access_key_id="pixelcheck-test", s3_secret_access_key="pixelcheck-test-secret")
    assert statuses_of_a_server_that_never_serves(settings, tmp_path / "server.log") == {
        "": NOT_SERVING, "pixelcheck.v1.AuthService": SERVING, "pixelcheck.v1.IngestionService": NOT_SERVING,
        "pixelcheck.v1.ResultsService": NOT_SERVING, "pixelcheck.v1.ReportsService": NOT_SERVING,
        "pixelcheck.v1.AuditService": SERVING, "pixelcheck.v1.WebhooksService": SERVING}
