"""One upload→verdict is one trace: the client's span, the server's RPC spans, the Celery hop, the worker's
stages, the automatic report, database and Redis calls, all exported over OTLP to a test receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from grpc import aio
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select

from pixelcheck.audit.models import AuditEvent
from pixelcheck.bootstrap import build_container
from pixelcheck.settings import Settings
from tests import images
from tests.e2e.flows import bearer, new_user, sign_in
from tests.e2e.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.e2e.uploads import upload, watch
from tests.processes import ServerProcess, WorkerProcess

STAGES = ["analysis.decode", "analysis.provenance", "analysis.pixel_model", "analysis.fusion", "analysis.save"]
UPLOAD = "/pixelcheck.v1.IngestionService/UploadImage"
WATCH = "/pixelcheck.v1.ResultsService/WatchAnalysis"
REQUEST_ID = "traced-upload-1"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def traced_settings(base_settings: Settings, migrated_database_url: str, receiver: OtlpReceiver) -> Settings:
    return base_settings.with_overrides(otlp_endpoint=receiver.endpoint, log_format="json",
                                        redis_key_prefix=f"{base_settings.redis_key_prefix}-traced",
                                        signin_max_failures=10_000)


@pytest.fixture(scope="module")
def traced_stack(traced_settings: Settings, tmp_path_factory: pytest.TempPathFactory,
                 ) -> Iterator[tuple[ServerProcess, WorkerProcess]]:
    logs = tmp_path_factory.mktemp("traced")
    server = ServerProcess(traced_settings, logs / "server.log").start()
    try:
        worker = WorkerProcess(traced_settings, logs / "worker.log").start()
        try:
            yield server, worker
        finally:
            worker.stop()
    finally:
        server.stop()


def descends_from(span: ReceivedSpan, ancestor_id: str, by_id: dict[str, ReceivedSpan]) -> bool:
    current: ReceivedSpan | None = span
    while current is not None:
        if current.parent_id == ancestor_id:
            return True
        current = by_id.get(current.parent_id)
    return False


async def test_one_upload_to_verdict_is_one_trace_from_the_client_through_the_worker_stages(
        traced_settings: Settings, traced_stack: tuple[ServerProcess, WorkerProcess],
        receiver: OtlpReceiver) -> None:
    server, worker = traced_stack
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    channel = aio.insecure_channel(server.address, interceptors=aio_client_interceptors(tracer_provider=provider))
    try:
        # A PROFESSIONAL, so that the verdict also builds the automatic report in the same trace.
        from pixelcheck.v1 import auth_pb2_grpc

        auth = auth_pb2_grpc.AuthServiceStub(channel)
        user = await new_user(auth)
        container = build_container(traced_settings.with_overrides(otlp_endpoint=""), role="cli")
        try:
            container.identity.set_roles(user_id=user.user.id, roles=["USER", "PROFESSIONAL"])
        finally:
            container.close()
        token = (await sign_in(auth, user.username)).access_token
        metadata = (*bearer(token), ("x-request-id", REQUEST_ID))
        with provider.get_tracer("test-client").start_as_current_span("client: upload and watch") as root:
            uploaded = await upload(channel, metadata, images.jpeg(640, 480, seed=21))
            events = await watch(channel, bearer(token), uploaded.image.id)
        assert events[-1].result.report_id, "a PROFESSIONAL's verdict comes with an automatic report"
    finally:
        await channel.close()
    trace_id = format(root.get_span_context().trace_id, "032x")
    client_upload = next(s for s in exporter.get_finished_spans() if s.name == UPLOAD)
    assert client_upload.kind is SpanKind.CLIENT and format(client_upload.context.trace_id, "032x") == trace_id

    def complete(spans: list[ReceivedSpan]) -> bool:
        names = {s.name for s in spans if s.trace_id == trace_id}
        return {UPLOAD, WATCH, *STAGES, "report.build"} <= names

    receiver.wait_for(complete, timeout=90)
    spans = receiver.spans(trace_id)
    by_id = {s.span_id: s for s in spans}
    by_name: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)

    # The server's span is the child of the client's, with the gRPC semantic conventions.
    server_upload = by_name[UPLOAD][0]
    assert server_upload.parent_id == format(client_upload.context.span_id, "016x")
    assert server_upload.span.kind == server_upload.span.SPAN_KIND_SERVER
    assert server_upload.attributes["rpc.system"] == "grpc"
    assert server_upload.attributes["rpc.service"] == "pixelcheck.v1.IngestionService"
    assert server_upload.attributes["rpc.method"] == "UploadImage"
    assert server_upload.resource["pixelcheck.role"] == "server"
    assert by_name[WATCH][0].span.kind == server_upload.span.SPAN_KIND_SERVER  # server streaming too

    # The Celery hop: the fair queue's turn, published inside the upload's span, run by the worker as its descendant
    # (the worker publishes a second turn for the region map the automatic report waits for).
    publish = next(p for p in by_name["apply_async/pixelcheck.run_next"] if p.resource["pixelcheck.role"] == "server")
    assert descends_from(publish, server_upload.span_id, by_id)
    run = next(r for r in by_name["run/pixelcheck.run_next"] if r.parent_id == publish.span_id)
    assert run.resource["pixelcheck.role"] == "worker"

    # Every stage is a child of the task's span, in order, and the report is built in the same trace.
    stages = [by_name[name][0] for name in STAGES]
    assert all(s.parent_id == run.span_id for s in stages)
    assert [s.span.start_time_unix_nano for s in stages] == sorted(s.span.start_time_unix_nano for s in stages)
    assert all(s.attributes["pixelcheck.image_id"] == uploaded.image.id for s in stages)
    report = by_name["report.build"][0]
    assert descends_from(report, stages[-1].span_id, by_id)

    # Database and Redis calls from the standard instrumentations, inside the stages.
    systems = {s.attributes.get("db.system") or s.attributes.get("db.system.name") for s in spans
               if descends_from(s, run.span_id, by_id)}
    assert {"redis"} <= systems and systems & {"sqlite", "mysql", "mariadb"}, systems

    # The trace id is next to the request id in the audit trail and in the server's JSON log.
    engine_url = traced_settings.resolved_database_url
    container = build_container(traced_settings.with_overrides(database_url=engine_url, otlp_endpoint=""),
                                role="cli")
    try:
        with container.read_sessions() as session:
            event = session.scalars(select(AuditEvent).where(AuditEvent.request_id == REQUEST_ID,
                                                             AuditEvent.method == UPLOAD)).one()
        assert event.payload["trace_id"] == trace_id
    finally:
        container.close()
    logged = [json.loads(line) for line in Path(server.log_path).read_text().splitlines()
              if line.startswith("{") and REQUEST_ID in line]
    assert any(doc.get("trace_id") == trace_id for doc in logged), logged
