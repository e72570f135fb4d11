"""PixelCheckClient: a typed, synchronous Python client over the generated pixelcheck.v1 stubs.

    with PixelCheckClient("pixelcheck.example.com:443") as client:
        client.sign_in("alice", "correct horse battery")
        result = client.analyze("photo.jpg")
        print(result.label, result.confidence)

Every call has a deadline (`timeout`, overridable per call), idempotent calls are retried with backoff on
UNAVAILABLE, and the access token is refreshed before it expires or when the server says TOKEN_EXPIRED or
TOKEN_OUTDATED (the account's roles changed since it was issued).
Failures raise PixelCheckError.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pixelcheck.client.errors import IntegrityError, PixelCheckError
from pixelcheck.client.retry import RetryPolicy
from pixelcheck.client.sources import UploadSource
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
    webhooks_pb2,
    webhooks_pb2_grpc,
)
from pixelcheck.video_formats import sniff_video_type

T = TypeVar("T")
Metadata = list[tuple[str, str]]
Progress = Callable[[int, int], None]  # (bytes done, bytes in total)

MIB = 1024 * 1024
DEFAULT_TIMEOUT = 30.0
UPLOAD_TIMEOUT = 300.0  # 10 MiB over a slow uplink
WATCH_TIMEOUT = 900.0  # a queued analysis may wait behind others
REFRESH_MARGIN_SECONDS = 30.0  # refresh this long before the access token expires
TERMINAL_STATES = (common_pb2.ANALYSIS_STATE_SUCCEEDED, common_pb2.ANALYSIS_STATE_FAILED)
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


_REFRESH_REASONS = ("TOKEN_EXPIRED", "TOKEN_OUTDATED")  # a refreshed token fixes these


@dataclass
class Session:
    """The signed-in caller's tokens. `expires_at` is the access token's expiry in epoch seconds."""

    access_token: str
    refresh_token: str
    expires_at: float
    username: str = ""


def host_of(address: str) -> str:
    """The host part of "host:port", "[v6]:port" or a bare host."""
    if address.startswith("["):
        return address[1:].split("]", 1)[0]
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


class PixelCheckClient:
    """A connection to one PixelCheck server; safe to share between threads.

    TLS is used unless the host is local; pass `root_certificates` (PEM bytes) to trust a private CA,
    or `tls=False` / `tls=True` to decide explicitly. `on_session` is called with the new Session after
    every sign-in and refresh (and None after sign-out) so callers can persist rotated tokens.
    """

    def __init__(self, address: str, *, session: Session | None = None,
                 on_session: Callable[[Session | None], None] | None = None,
                 root_certificates: bytes | None = None, tls: bool | None = None,
                 timeout: float = DEFAULT_TIMEOUT, retry: RetryPolicy | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.address = address
        self.session = session
        self._on_session = on_session
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._clock, self._sleep = clock, sleep
        self._refresh_lock = threading.Lock()
        if tls is None:
            tls = root_certificates is not None or host_of(address) not in LOCAL_HOSTS
        options = [("grpc.max_receive_message_length", 8 * MIB)]  # report chunks arrive up to 4 MiB
        if tls:
            credentials = grpc.ssl_channel_credentials(root_certificates)
            self._channel = grpc.secure_channel(address, credentials, options)
        else:
            self._channel = grpc.insecure_channel(address, options)
        self._auth = auth_pb2_grpc.AuthServiceStub(self._channel)
        self._ingestion = ingestion_pb2_grpc.IngestionServiceStub(self._channel)
        self._results = results_pb2_grpc.ResultsServiceStub(self._channel)
        self._reports = reports_pb2_grpc.ReportsServiceStub(self._channel)
        self._webhooks = webhooks_pb2_grpc.WebhooksServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def __enter__(self) -> PixelCheckClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        self._channel.close()

    # -- accounts ---------------------------------------------------------------------------------
    def sign_up(self, username: str, email: str, password: str, display_name: str = "") -> auth_pb2.User:
        """Create an account (role USER). Raises PixelCheckError (INVALID_ARGUMENT, ALREADY_EXISTS …)."""
        request = auth_pb2.SignUpRequest(username=username, email=email, password=password,
                                         display_name=display_name)
        return self._unary(self._auth.SignUp, request, authenticated=False, idempotent=False).user

    def sign_in(self, login: str, password: str) -> auth_pb2.User:
        """Sign in with a username or email; the client keeps the tokens. Raises PixelCheckError."""
        request = auth_pb2.SignInRequest(login=login, password=password)
        response = self._unary(self._auth.SignIn, request, authenticated=False, idempotent=False)
        self._set_session(Session(response.access_token, response.refresh_token,
                                  self._clock() + response.expires_in_seconds, response.user.username))
        return response.user

    def refresh(self) -> Session:
        """Rotate the tokens now (never retried: a replayed refresh token revokes the session)."""
        with self._refresh_lock:
            return self._refresh_locked()

    def sign_out(self) -> None:
        """Revoke this session's refresh-token family and forget the tokens."""
        if self.session is not None:
            request = auth_pb2.SignOutRequest(refresh_token=self.session.refresh_token)
            self._unary(self._auth.SignOut, request, idempotent=False)
        self._set_session(None)

    def current_user(self) -> auth_pb2.User:
        """The signed-in account."""
        return self._unary(self._auth.GetCurrentUser, auth_pb2.GetCurrentUserRequest()).user

    # -- images and analyses ----------------------------------------------------------------------
    def upload(self, source: str | Path | bytes, filename: str | None = None, *,
               request_id: str | None = None, content_type: str = "", external_id: str = "",
               progress: Progress | None = None, timeout: float | None = None) -> ingestion_pb2.UploadImageResponse:
        """Stream an image (a path or bytes) in 1 MiB chunks after a metadata message with its size and
        SHA-256; `external_id` is an id of your own to find it by later. Retried on UNAVAILABLE only when
        `request_id` makes the replay safe; sent again after the server's RetryInfo delay when refused with
        ANALYSIS_QUEUE_FULL or UPLOAD_RATE_LIMITED (nothing was stored). A video clip's type is declared from
        its first bytes when `content_type` is empty (a clip over the image byte limit needs it declared)."""
        blob = UploadSource.of(source, filename)

        def messages() -> Iterator[ingestion_pb2.UploadImageRequest]:
            yield ingestion_pb2.UploadImageRequest(metadata=ingestion_pb2.UploadMetadata(
                filename=blob.filename, size_bytes=blob.size,
                content_type=content_type or sniff_video_type(blob.head) or "",
                sha256=blob.sha256, request_id=request_id or "", external_id=external_id))
            sent = 0
            for chunk in blob.chunks(MIB):
                yield ingestion_pb2.UploadImageRequest(chunk=chunk)
                sent += len(chunk)
                if progress is not None:
                    progress(sent, blob.size)

        return self._invoke(lambda md, t: self._ingestion.UploadImage(messages(), metadata=md, timeout=t),
                            idempotent=request_id is not None,
                            timeout=timeout or max(self._timeout, UPLOAD_TIMEOUT))

    def import_url(self, url: str, *, filename: str = "", external_id: str = "", request_id: str | None = None,
                   timeout: float | None = None) -> ingestion_pb2.ImportImageResponse:
        """Have the server fetch an image from an http(s) URL and analyse it like an upload. Retried on
        UNAVAILABLE only when `request_id` makes the replay safe. Raises PixelCheckError: INVALID_ARGUMENT
        (the URL, or an address the server refuses to fetch), FAILED_PRECONDITION (what the remote server
        did: URL_TIMEOUT, URL_TOO_LARGE, URL_HTTP_ERROR ...), RESOURCE_EXHAUSTED (URL_IMPORT_RATE_LIMITED)."""
        request = ingestion_pb2.ImportImageRequest(url=url, filename=filename, external_id=external_id,
                                                   request_id=request_id or "")
        return self._unary(self._ingestion.ImportImage, request, idempotent=request_id is not None,
                           timeout=timeout or max(self._timeout, 60.0))

    def get_image(self, image_id: str) -> ingestion_pb2.Image:
        """One image (owner, ADMIN or SERVICE). NOT_FOUND when unknown or not visible."""
        return self._unary(self._ingestion.GetImage, ingestion_pb2.GetImageRequest(image_id=image_id)).image

    def get_result(self, image_id: str) -> results_pb2.AnalysisResult:
        """The analysis of an image, whatever its state. NOT_FOUND when unknown or not visible."""
        return self._unary(self._results.GetResult, results_pb2.GetResultRequest(image_id=image_id)).result

    def region_map(self, image_id: str, *, max_side: int = 0, wait: float = 0.0,
                   frame_index: int | None = None) -> results_pb2.GetRegionMapResponse:
        """The region-map PNG of an image (owner or ADMIN) and the map it shows; with frame_index, of that frame
        of an animation or clip (one its timeline read; the response's `frame` says which, and when). With
        wait > 0, keeps asking for up to that many seconds while the server answers REGION_MAP_NOT_READY (the
        map is made after the verdict). Raises PixelCheckError: NOT_FOUND, FAILED_PRECONDITION (not ready, or no
        map), INVALID_ARGUMENT (a frame the timeline did not read, or any frame of a still image)."""
        request = results_pb2.GetRegionMapRequest(image_id=image_id, max_side=max_side, frame_index=frame_index)
        deadline = time.monotonic() + wait
        while True:
            try:
                return self._unary(self._results.GetRegionMap, request)
            except PixelCheckError as error:
                if error.reason != "REGION_MAP_NOT_READY" or time.monotonic() >= deadline:
                    raise
                pause = error.retry_after_seconds or 1.0  # the server's RetryInfo says when to look again
                time.sleep(min(pause, max(0.05, deadline - time.monotonic())))

    def watch(self, image_id: str, *, timeout: float | None = None) -> Iterator[results_pb2.AnalysisEvent]:
        """Events of an analysis as they happen: the current snapshot first, ending after SUCCEEDED or
        FAILED. A dropped stream is reopened (it starts with a fresh snapshot)."""
        request = results_pb2.WatchAnalysisRequest(image_id=image_id)
        for response in self._server_stream(self._results.WatchAnalysis, request, restartable=True,
                                            timeout=timeout or WATCH_TIMEOUT):
            yield response.event

    def analyze(self, source: str | Path | bytes, filename: str | None = None, *,
                request_id: str | None = None, progress: Progress | None = None,
                on_event: Callable[[results_pb2.AnalysisEvent], None] | None = None,
                timeout: float | None = None) -> results_pb2.AnalysisResult:
        """Upload an image and wait for its verdict; returns the final AnalysisResult (SUCCEEDED or
        FAILED — check `state`)."""
        image = self.upload(source, filename, request_id=request_id, progress=progress).image
        for event in self.watch(image.id, timeout=timeout):
            if on_event is not None:
                on_event(event)
            if event.state in TERMINAL_STATES:
                return event.result if event.HasField("result") else self.get_result(image.id)
        return self.get_result(image.id)  # the stream ended early: report what the server has

    def list_results(self, *, page_size: int = 0, page_token: str = "", label: str | int = 0,
                     filename_contains: str = "", order_by: str = "",
                     external_id: str = "") -> results_pb2.ListResultsResponse:
        """One page of the caller's results; `label` is "ai", "real" or a Label value; `external_id` keeps
        the results of images given that id."""
        request = results_pb2.ListResultsRequest(page_size=page_size, page_token=page_token,
                                                 label=enum_value(common_pb2.Label, "LABEL_", label),
                                                 filename_contains=filename_contains, order_by=order_by,
                                                 external_id=external_id)
        return self._unary(self._results.ListResults, request)

    def iter_results(self, **filters: str | int) -> Iterator[results_pb2.AnalysisResult]:
        """Every result matching the filters of list_results, following page tokens."""
        token = ""
        while True:
            page = self.list_results(page_token=token, **filters)  # type: ignore[arg-type]
            yield from page.results
            if not (token := page.next_page_token):
                return

    # -- reports ----------------------------------------------------------------------------------
    def create_report(self, image_ids: list[str], *, format: str | int = "pdf",
                      title: str = "") -> reports_pb2.Report:
        """Request a PDF or CSV report (PROFESSIONAL or ADMIN); it is built in the background."""
        report_format = enum_value(common_pb2.ReportFormat, "REPORT_FORMAT_", format)
        request = reports_pb2.CreateReportRequest(image_ids=image_ids, title=title, format=report_format)
        return self._unary(self._reports.CreateReport, request, idempotent=False).report

    def get_report(self, report_id: str) -> reports_pb2.Report:
        """One report and its state."""
        return self._unary(self._reports.GetReport, reports_pb2.GetReportRequest(report_id=report_id)).report

    def wait_for_report(self, report_id: str, *, timeout: float = 120.0,
                        interval: float = 0.5) -> reports_pb2.Report:
        """Poll until the report is READY or FAILED (there is no report stream); returns the last state
        seen when `timeout` passes first."""
        deadline = self._clock() + timeout
        while True:
            report = self.get_report(report_id)
            done = report.state in (common_pb2.REPORT_STATE_READY, common_pb2.REPORT_STATE_FAILED)
            if done or self._clock() >= deadline:
                return report
            self._sleep(interval)

    def download_report(self, report_id: str, dest: str | Path, *, progress: Progress | None = None,
                        timeout: float | None = None) -> Path:
        """Save a READY report to `dest` and check its size and SHA-256. `dest` is a folder (the server's file
        name is used there) when it exists as one or ends with "/", which creates it; otherwise it names the
        file, in a folder that must exist. Raises PixelCheckError (FAILED_PRECONDITION while not ready),
        IntegrityError, or FileNotFoundError for a file path whose folder does not exist."""
        folder = str(dest).endswith(("/", os.sep))
        dest = Path(dest)
        if folder:
            dest.mkdir(parents=True, exist_ok=True)
        elif not dest.is_dir() and not dest.parent.is_dir():
            raise FileNotFoundError(f"cannot save the report as {dest}: the folder {dest.parent} does not exist "
                                    "(end the path with / to save into a new folder)")
        request = reports_pb2.DownloadReportRequest(report_id=report_id)
        stream = self._server_stream(self._reports.DownloadReport, request, restartable=False,
                                     timeout=timeout or max(self._timeout, UPLOAD_TIMEOUT))
        first = next(stream)
        if not first.HasField("header"):
            raise IntegrityError("the download did not start with a header")
        header = first.header
        target = dest / Path(header.filename).name if dest.is_dir() else dest
        digest, written = hashlib.sha256(), 0
        partial = target.with_name(target.name + ".part")
        with partial.open("wb") as out:
            for message in stream:
                out.write(message.chunk)
                digest.update(message.chunk)
                written += len(message.chunk)
                if progress is not None:
                    progress(written, header.size_bytes)
        if written != header.size_bytes or (header.sha256 and digest.hexdigest() != header.sha256):
            partial.unlink()
            raise IntegrityError(f"report {report_id}: got {written} bytes with SHA-256 "
                                 f"{digest.hexdigest()}, expected {header.size_bytes} with {header.sha256}")
        partial.replace(target)
        return target

    # -- webhooks ---------------------------------------------------------------------------------
    def create_webhook(self, url: str, events: list[str | int] | None = None, *,
                       description: str = "") -> webhooks_pb2.CreateWebhookEndpointResponse:
        """Register an endpoint for `events` ("analysis.succeeded" (the default), "analysis.failed",
        "report.ready" or WebhookEventType values); the response's `secret` is shown only this once."""
        request = webhooks_pb2.CreateWebhookEndpointRequest(
            url=url, description=description,
            event_types=[webhook_event(e) for e in (events or ["analysis.succeeded"])])
        return self._unary(self._webhooks.CreateWebhookEndpoint, request, idempotent=False)

    def list_webhooks(self) -> list[webhooks_pb2.WebhookEndpoint]:
        """Every endpoint of the caller, newest first (following page tokens)."""
        found, token = [], ""
        while True:
            page = self._unary(self._webhooks.ListWebhookEndpoints,
                               webhooks_pb2.ListWebhookEndpointsRequest(page_token=token))
            found.extend(page.endpoints)
            if not (token := page.next_page_token):
                return found

    def delete_webhook(self, endpoint_id: str) -> None:
        """Remove an endpoint; its pending deliveries are dropped."""
        self._unary(self._webhooks.DeleteWebhookEndpoint,
                    webhooks_pb2.DeleteWebhookEndpointRequest(endpoint_id=endpoint_id))

    def rotate_webhook_secret(self, endpoint_id: str) -> webhooks_pb2.RotateWebhookSecretResponse:
        """A new secret (shown only this once); the old one still signs for 24 hours."""
        return self._unary(self._webhooks.RotateWebhookSecret,
                           webhooks_pb2.RotateWebhookSecretRequest(endpoint_id=endpoint_id), idempotent=False)

    def webhook_deliveries(self, endpoint_id: str, *, page_size: int = 0,
                           page_token: str = "") -> webhooks_pb2.ListWebhookDeliveriesResponse:
        """One page of an endpoint's deliveries, newest first: attempts, status codes, next retry."""
        request = webhooks_pb2.ListWebhookDeliveriesRequest(endpoint_id=endpoint_id, page_size=page_size,
                                                            page_token=page_token)
        return self._unary(self._webhooks.ListWebhookDeliveries, request)

    # -- health -----------------------------------------------------------------------------------
    def health(self, service: str = "", *, timeout: float | None = None) -> str:
        """The grpc.health.v1 status name ("SERVING", "NOT_SERVING" …) of `service` ("" = overall)."""
        request = health_pb2.HealthCheckRequest(service=service)
        response = self._unary(self._health.Check, request, authenticated=False, timeout=timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    # -- plumbing ---------------------------------------------------------------------------------
    def _set_session(self, session: Session | None) -> None:
        self.session = session
        if self._on_session is not None:
            self._on_session(session)

    def _refresh_locked(self) -> Session:
        if self.session is None:
            raise PixelCheckError(grpc.StatusCode.UNAUTHENTICATED, "Not signed in", reason="NOT_SIGNED_IN")
        request = auth_pb2.RefreshTokenRequest(refresh_token=self.session.refresh_token)
        response = self._invoke(lambda md, t: self._auth.RefreshToken(request, metadata=md, timeout=t),
                                authenticated=False, idempotent=False)
        session = Session(response.access_token, response.refresh_token,
                          self._clock() + response.expires_in_seconds, self.session.username)
        self._set_session(session)
        return session

    def _fresh_access_token(self, expired: str = "") -> str:
        """The access token to send, refreshed first when it expires soon or the server rejected `expired`."""
        session = self.session
        if session is None:
            return ""
        if expired or session.expires_at - self._clock() < REFRESH_MARGIN_SECONDS:
            with self._refresh_lock:
                # Another thread may have refreshed while this one waited for the lock.
                current = self.session
                if current is not None and (current.access_token == expired if expired
                                            else current.expires_at - self._clock() < REFRESH_MARGIN_SECONDS):
                    self._refresh_locked()
        return self.session.access_token if self.session else ""

    def _unary(self, method: Callable[..., T], request: object, *, authenticated: bool = True,
               idempotent: bool = True, timeout: float | None = None) -> T:
        return self._invoke(lambda md, t: method(request, metadata=md, timeout=t),
                            authenticated=authenticated, idempotent=idempotent, timeout=timeout)

    def _invoke(self, call: Callable[[Metadata, float], T], *, authenticated: bool = True,
                idempotent: bool = True, timeout: float | None = None) -> T:
        """Run call(metadata, timeout), refreshing once on TOKEN_EXPIRED or TOKEN_OUTDATED, retrying UNAVAILABLE
        (idempotent calls) and admission refusals (any call: nothing was stored) after the server's RetryInfo."""
        request_id = uuid.uuid4().hex  # the same id on every attempt ties retries together in the audit log
        delays = self._retry.delays()
        expired = ""
        while True:
            token = self._fresh_access_token(expired) if authenticated else ""
            metadata = [("x-request-id", request_id)]
            if token:
                metadata.append(("authorization", f"Bearer {token}"))
            try:
                return call(metadata, timeout or self._timeout)
            except grpc.RpcError as exc:
                error = PixelCheckError.from_rpc_error(exc, request_id)
            if authenticated and token and not expired and error.reason in _REFRESH_REASONS:
                expired = token
                continue
            retry = RetryPolicy.refused_before_reading(error) or (idempotent and RetryPolicy.should_retry(error))
            delay = next(delays, None) if retry else None
            if delay is None:
                raise error
            self._sleep(max(delay, error.retry_after_seconds or 0.0))

    def _server_stream(self, method: Callable[..., Iterator[T]], request: object, *, restartable: bool,
                       timeout: float) -> Iterator[T]:
        """Iterate a server stream; reopen it after UNAVAILABLE when nothing arrived yet, or at any
        point when `restartable`."""
        def open_stream(metadata: Metadata, deadline: float) -> tuple[grpc.Call, T | None]:
            call = method(request, metadata=metadata, timeout=deadline)
            return call, next(call, None)  # the first message proves the call was accepted

        reopen_delays = self._retry.delays()
        while True:
            call, first = self._invoke(open_stream, timeout=timeout)
            try:
                if first is None:
                    return
                yield first
                yield from call  # type: ignore[misc]
                return
            except grpc.RpcError as exc:
                error = PixelCheckError.from_rpc_error(exc)
                delay = next(reopen_delays, None) if restartable and RetryPolicy.should_retry(error) else None
                if delay is None:
                    raise error from None
            finally:
                call.cancel()  # the caller may stop early; end the call on the server too
            self._sleep(delay)


def webhook_event(value: str | int) -> int:
    """A WebhookEventType from "analysis.succeeded", "ANALYSIS_SUCCEEDED" or a number."""
    return enum_value(webhooks_pb2.WebhookEventType, "WEBHOOK_EVENT_TYPE_",
                      value.replace(".", "_") if isinstance(value, str) else value)


def enum_value(enum: object, prefix: str, value: str | int) -> int:
    """An enum number from a number or a case-insensitive name with or without its prefix ("ai")."""
    if isinstance(value, int):
        return value
    name = value.upper()
    return enum.Value(name if name.startswith(prefix) else prefix + name)  # type: ignore[attr-defined]
