"""PixelCheckClient against a scripted in-process gRPC server: token refresh, retries, deadlines, chunked
uploads, watching and verified downloads — everything the SDK does on the wire, without a database."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.rpc import status_pb2
from grpc_status import rpc_status
from pixelcheck.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    ingestion_pb2,
    ingestion_pb2_grpc,
    reports_pb2,
    reports_pb2_grpc,
    results_pb2,
    results_pb2_grpc,
)

from pixelcheck.api.errors import status_details
from pixelcheck.client import PixelCheckClient, PixelCheckError, RetryPolicy, Session
from pixelcheck.client.errors import IntegrityError

MIB = 1024 * 1024
FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str, reason: str,
          retry_after_seconds: float | None = None) -> None:
    """Fail a call the way the PixelCheck server does: AIP-193 details plus a trailing request id."""
    details = status_details(code, message, reason, retry_after_seconds=retry_after_seconds)
    context.set_trailing_metadata((("x-request-id", context_request_id(context)),))
    context.abort_with_status(rpc_status.to_status(status_pb2.Status.FromString(details)))


def context_request_id(context: grpc.ServicerContext) -> str:
    return dict(context.invocation_metadata()).get("x-request-id", "")


class FakeAuth(auth_pb2_grpc.AuthServiceServicer):
    """Issues access tokens "access-1", "access-2", …; only the newest is accepted."""

    def __init__(self, expires_in: int = 900) -> None:
        self.generation = 1
        self.expires_in = expires_in
        self.refresh_calls = 0
        self.expired: set[str] = set()  # access tokens the server treats as expired from now on

    def SignIn(self, request, context):  # noqa: N802 - gRPC method name
        return auth_pb2.SignInResponse(access_token="access-1", refresh_token="refresh-1", token_type="Bearer",
                                       expires_in_seconds=self.expires_in,
                                       user=auth_pb2.User(id="u1", username=request.login))

    def RefreshToken(self, request, context):  # noqa: N802
        if request.refresh_token != f"refresh-{self.generation}":
            abort(context, grpc.StatusCode.UNAUTHENTICATED, "Refresh token reused", "REFRESH_TOKEN_REUSED")
        self.generation += 1
        self.refresh_calls += 1
        return auth_pb2.RefreshTokenResponse(access_token=f"access-{self.generation}",
                                             refresh_token=f"refresh-{self.generation}",
                                             token_type="Bearer", expires_in_seconds=self.expires_in)

    def check(self, context: grpc.ServicerContext) -> None:
        token = dict(context.invocation_metadata()).get("authorization", "").removeprefix("Bearer ")
        if token in self.expired or token != f"access-{self.generation}":
            abort(context, grpc.StatusCode.UNAUTHENTICATED, "Access token expired", "TOKEN_EXPIRED")


class FakeResults(results_pb2_grpc.ResultsServiceServicer):
    def __init__(self, auth: FakeAuth, unavailable_times: int = 0) -> None:
        self.auth = auth
        self.unavailable_times = unavailable_times
        self.get_calls = 0
        self.request_ids: list[str] = []
        self.time_remaining: list[float] = []

    def GetResult(self, request, context):  # noqa: N802
        self.get_calls += 1
        self.request_ids.append(context_request_id(context))
        self.time_remaining.append(context.time_remaining())
        if self.unavailable_times:
            self.unavailable_times -= 1
            abort(context, grpc.StatusCode.UNAVAILABLE, "Database unavailable", "DATABASE_UNAVAILABLE")
        self.auth.check(context)
        return results_pb2.GetResultResponse(result=results_pb2.AnalysisResult(
            image_id=request.image_id, state=common_pb2.ANALYSIS_STATE_SUCCEEDED, label=common_pb2.LABEL_AI))

    def WatchAnalysis(self, request, context):  # noqa: N802
        self.auth.check(context)
        for stage, progress in ((common_pb2.ANALYSIS_STAGE_QUEUED, 0.0), (common_pb2.ANALYSIS_STAGE_PIXEL_MODEL, 0.5)):
            yield results_pb2.WatchAnalysisResponse(event=results_pb2.AnalysisEvent(
                image_id=request.image_id, state=common_pb2.ANALYSIS_STATE_RUNNING, stage=stage, progress=progress))
        final = results_pb2.AnalysisResult(image_id=request.image_id, state=common_pb2.ANALYSIS_STATE_SUCCEEDED,
                                           label=common_pb2.LABEL_REAL, confidence=0.8)
        yield results_pb2.WatchAnalysisResponse(event=results_pb2.AnalysisEvent(
            image_id=request.image_id, state=final.state, stage=common_pb2.ANALYSIS_STAGE_DONE, progress=1.0,
            result=final))


class FakeIngestion(ingestion_pb2_grpc.IngestionServiceServicer):
    def __init__(self, auth: FakeAuth, unavailable_times: int = 0, refusals: list[str] | None = None) -> None:
        self.auth = auth
        self.unavailable_times = unavailable_times
        self.refusals = refusals or []  # admission refusals to give first, before reading the stream
        self.streams: list[list[ingestion_pb2.UploadImageRequest]] = []

    def UploadImage(self, request_iterator, context):  # noqa: N802
        self.auth.check(context)
        if self.refusals:
            abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, "Try again shortly", self.refusals.pop(0),
                  retry_after_seconds=1.5)
        messages = list(request_iterator)
        self.streams.append(messages)
        if self.unavailable_times:
            self.unavailable_times -= 1
            abort(context, grpc.StatusCode.UNAVAILABLE, "Broker unavailable", "BROKER_UNAVAILABLE")
        data = b"".join(m.chunk for m in messages[1:])
        return ingestion_pb2.UploadImageResponse(image=ingestion_pb2.Image(
            id="img-1", filename=messages[0].metadata.filename, size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(), analysis_state=common_pb2.ANALYSIS_STATE_QUEUED))


class FakeReports(reports_pb2_grpc.ReportsServiceServicer):
    def __init__(self, auth: FakeAuth, body: bytes, announced_sha256: str) -> None:
        self.auth, self.body, self.announced_sha256 = auth, body, announced_sha256
        self.create_calls = 0

    def CreateReport(self, request, context):  # noqa: N802
        self.create_calls += 1
        abort(context, grpc.StatusCode.UNAVAILABLE, "Broker unavailable", "BROKER_UNAVAILABLE")

    def DownloadReport(self, request, context):  # noqa: N802
        self.auth.check(context)
        yield reports_pb2.DownloadReportResponse(header=reports_pb2.ReportFileHeader(
            filename="../../report.csv", content_type="text/csv", size_bytes=len(self.body),
            sha256=self.announced_sha256))
        for start in range(0, len(self.body), 4):
            yield reports_pb2.DownloadReportResponse(chunk=self.body[start:start + 4])


@pytest.fixture
def auth() -> FakeAuth:
    return FakeAuth()


@pytest.fixture
def server() -> Iterator[tuple[grpc.Server, str]]:
    """A gRPC server on a free port; tests add servicers, then start it."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                         options=[("grpc.max_receive_message_length", 2 * MIB)])
    port = server.add_insecure_port("127.0.0.1:0")
    yield server, f"127.0.0.1:{port}"
    server.stop(None)


def started(server: tuple[grpc.Server, str], auth: FakeAuth, *servicers: object) -> str:
    grpc_server, address = server
    auth_pb2_grpc.add_AuthServiceServicer_to_server(auth, grpc_server)
    for servicer in servicers:
        adder = {FakeResults: results_pb2_grpc.add_ResultsServiceServicer_to_server,
                 FakeIngestion: ingestion_pb2_grpc.add_IngestionServiceServicer_to_server,
                 FakeReports: reports_pb2_grpc.add_ReportsServiceServicer_to_server}[type(servicer)]
        adder(servicer, grpc_server)
    grpc_server.start()
    return address


def signed_in(address: str, **kwargs: object) -> PixelCheckClient:
    client = PixelCheckClient(address, retry=FAST_RETRY, **kwargs)  # type: ignore[arg-type]
    client.sign_in("alice", "a long enough password")
    return client


# -- tokens ---------------------------------------------------------------------------------------
def test_expired_token_is_refreshed_once_and_the_call_repeated(server, auth):
    address = started(server, auth, results := FakeResults(auth))
    saved: list[Session | None] = []
    with signed_in(address, on_session=saved.append) as client:
        auth.expired.add("access-1")
        result = client.get_result("img-1")
    assert result.label == common_pb2.LABEL_AI
    assert auth.refresh_calls == 1
    assert [s.access_token for s in saved if s] == ["access-1", "access-2"]  # rotated tokens reach the caller
    assert results.get_calls == 2


def test_token_about_to_expire_is_refreshed_before_the_call(server):
    auth = FakeAuth(expires_in=10)  # inside the 30 s safety margin
    address = started(server, auth, results := FakeResults(auth))
    with signed_in(address) as client:
        client.get_result("img-1")
        assert client.session is not None and client.session.refresh_token == "refresh-2"
    assert results.get_calls == 1  # refreshed first, so the call never bounced


def test_refresh_is_never_retried_and_a_reused_token_is_reported(server, auth):
    address = started(server, auth)
    with signed_in(address) as client:
        client.session.refresh_token = "refresh-0"  # type: ignore[union-attr]
        with pytest.raises(PixelCheckError) as caught:
            client.refresh()
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.reason == "REFRESH_TOKEN_REUSED"


# -- retries --------------------------------------------------------------------------------------
def test_idempotent_call_is_retried_on_unavailable_with_the_same_request_id(server, auth):
    address = started(server, auth, results := FakeResults(auth, unavailable_times=2))
    with signed_in(address) as client:
        assert client.get_result("img-1").state == common_pb2.ANALYSIS_STATE_SUCCEEDED
    assert results.get_calls == 3
    assert len(set(results.request_ids)) == 1


def test_retries_stop_after_max_attempts_and_raise_the_last_error(server, auth):
    address = started(server, auth, results := FakeResults(auth, unavailable_times=10))
    with signed_in(address) as client, pytest.raises(PixelCheckError) as caught:
        client.get_result("img-1")
    assert results.get_calls == FAST_RETRY.max_attempts
    assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.UNAVAILABLE, "DATABASE_UNAVAILABLE")
    assert caught.value.request_id == results.request_ids[-1]
    assert not caught.value.unreachable  # the server answered: it is not a transport failure


def test_create_report_is_not_retried_because_it_is_not_idempotent(server, auth):
    address = started(server, auth, reports := FakeReports(auth, b"", ""))
    with signed_in(address) as client, pytest.raises(PixelCheckError):
        client.create_report(["img-1"], format="csv")
    assert reports.create_calls == 1


def test_upload_without_request_id_is_not_retried_but_with_one_it_is(server, auth, tmp_path: Path):
    address = started(server, auth, ingestion := FakeIngestion(auth, unavailable_times=1))
    image = tmp_path / "photo.jpg"
    image.write_bytes(b"x" * 10)
    with signed_in(address) as client:
        with pytest.raises(PixelCheckError):
            client.upload(image)
        ingestion.unavailable_times = 1
        response = client.upload(image, request_id="once")
    assert response.image.id == "img-1"
    assert len(ingestion.streams) == 3
    assert ingestion.streams[-1][0].metadata.request_id == "once"


def test_an_upload_refused_by_admission_is_sent_again_after_the_servers_retry_delay(server, auth, tmp_path: Path):
    address = started(server, auth, ingestion := FakeIngestion(auth, refusals=["ANALYSIS_QUEUE_FULL",
                                                                            "UPLOAD_RATE_LIMITED"]))
    slept: list[float] = []
    with signed_in(address, sleep=slept.append) as client:
        response = client.upload(b"x" * 10, "photo.jpg")  # no request id: safe anyway, nothing was stored
    assert response.image.id == "img-1" and len(ingestion.streams) == 1
    assert len(slept) == 2 and all(delay >= 1.5 for delay in slept)  # the server's RetryInfo wins


def test_an_admission_refusal_that_outlasts_the_retry_budget_reaches_the_caller(server, auth):
    address = started(server, auth, FakeIngestion(auth, refusals=["ANALYSIS_QUEUE_FULL"] * 5))
    with signed_in(address, sleep=lambda _: None) as client, pytest.raises(PixelCheckError) as caught:
        client.upload(b"x" * 10, "photo.jpg")
    assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "ANALYSIS_QUEUE_FULL")
    assert caught.value.retry_after_seconds == 1.5


def test_unreachable_server_is_reported_as_unreachable_after_its_deadline():
    with PixelCheckClient("127.0.0.1:1", retry=FAST_RETRY, timeout=2) as client, \
            pytest.raises(PixelCheckError) as caught:
        client.health()
    assert caught.value.unreachable
    assert caught.value.reason == ""


def test_every_call_carries_the_configured_deadline(server, auth):
    address = started(server, auth, results := FakeResults(auth))
    with signed_in(address, timeout=7) as client:
        client.get_result("img-1")
    assert 5 < results.time_remaining[0] < 7.5  # not the 30 s default, and not unlimited


# -- uploads, watching, downloads -----------------------------------------------------------------
def test_upload_streams_metadata_first_then_chunks_of_at_most_one_mib(server, auth, tmp_path: Path):
    address = started(server, auth, ingestion := FakeIngestion(auth))
    data = bytes(range(256)) * 10_000  # 2.44 MiB
    seen: list[tuple[int, int]] = []
    with signed_in(address) as client:
        response = client.upload(data, "big.png", progress=lambda done, total: seen.append((done, total)))
    messages = ingestion.streams[0]
    first = messages[0].metadata
    assert (first.filename, first.size_bytes, first.sha256) == ("big.png", len(data), hashlib.sha256(data).hexdigest())
    assert [len(m.chunk) for m in messages[1:]] == [MIB, MIB, len(data) - 2 * MIB]
    assert response.image.sha256 == hashlib.sha256(data).hexdigest()
    assert seen[-1] == (len(data), len(data)) and len(seen) == 3


def test_analyze_uploads_then_returns_the_terminal_result(server, auth, tmp_path: Path):
    address = started(server, auth, FakeIngestion(auth), FakeResults(auth))
    image = tmp_path / "cat.webp"
    image.write_bytes(b"RIFF....WEBP")
    stages: list[int] = []
    with signed_in(address) as client:
        result = client.analyze(image, on_event=lambda e: stages.append(e.stage))
    assert (result.image_id, result.state, result.label) == ("img-1", common_pb2.ANALYSIS_STATE_SUCCEEDED,
                                                             common_pb2.LABEL_REAL)
    assert stages == [common_pb2.ANALYSIS_STAGE_QUEUED, common_pb2.ANALYSIS_STAGE_PIXEL_MODEL,
                      common_pb2.ANALYSIS_STAGE_DONE]


def test_download_report_checks_sha256_and_keeps_the_file_inside_dest(server, auth, tmp_path: Path):
    body = b"image_id,label\nimg-1,AI\n"
    address = started(server, auth, FakeReports(auth, body, hashlib.sha256(body).hexdigest()))
    with signed_in(address) as client:
        path = client.download_report("rep-1", tmp_path)
    assert path == tmp_path / "report.csv"
    assert path.read_bytes() == body


def test_download_report_with_wrong_checksum_leaves_no_file(server, auth, tmp_path: Path):
    address = started(server, auth, FakeReports(auth, b"tampered", "0" * 64))
    with signed_in(address) as client, pytest.raises(IntegrityError):
        client.download_report("rep-1", tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


def test_local_hosts_use_plaintext_and_tls_can_be_forced(server, auth):
    address = started(server, auth).replace("127.0.0.1", "localhost")
    with PixelCheckClient(address) as client:
        assert client.sign_in("alice", "a long enough password").username == "alice"
    with PixelCheckClient(address, tls=True, retry=FAST_RETRY, timeout=2) as client, \
            pytest.raises(PixelCheckError) as caught:
        client.sign_in("alice", "a long enough password")  # a TLS handshake with a plaintext server fails
    assert caught.value.unreachable
