"""Tracing: off by default, the standard endpoint variable, trace ids in logs and audit events, stage spans."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck import tracing
from pixelcheck.analysis.pipeline import _StageClock
from pixelcheck.api.calls import CallInfo
from pixelcheck.audit.models import AuditEvent
from pixelcheck.audit.recorder import AuditRecorder
from pixelcheck.db import make_engine, make_session_factory, upgrade
from pixelcheck.observability import JsonFormatter, RequestIdFilter
from pixelcheck.settings import Settings
from pixelcheck.tracing import configure_tracing, current_trace_id


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> Tracer:
    """A tracer of a provider of its own: the process's global provider is never touched."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test")


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    engine = make_engine(url, pool_size=2)
    yield make_session_factory(engine)
    engine.dispose()


def test_tracing_is_off_without_an_endpoint() -> None:
    assert Settings.from_env(environ={}, env_file="/nonexistent").otlp_endpoint == ""
    assert configure_tracing(Settings(), role="server") is None
    assert current_trace_id() == ""


def test_the_standard_otlp_endpoint_variable_is_honoured_and_ours_wins() -> None:
    standard = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}
    assert Settings.from_env(environ=standard, env_file="/nonexistent").otlp_endpoint == "http://collector:4317"
    both = {**standard, "PIXELCHECK_OTLP_ENDPOINT": "http://ours:4317"}
    assert Settings.from_env(environ=both, env_file="/nonexistent").otlp_endpoint == "http://ours:4317"


def test_json_logs_carry_the_trace_id_inside_a_span_and_none_outside(tracer: Tracer) -> None:
    formatter, stamp = JsonFormatter(), RequestIdFilter()

    def logged() -> dict[str, object]:
        record = logging.LogRecord("pixelcheck.test", logging.INFO, __file__, 1, "hello", None, None)
        stamp.filter(record)
        return json.loads(formatter.format(record))

    assert "trace_id" not in logged()
    with tracer.start_as_current_span("work") as span:
        doc = logged()
    assert doc["trace_id"] == format(span.get_span_context().trace_id, "032x")


def test_audit_events_recorded_in_a_trace_carry_its_id(tracer: Tracer, sessions: sessionmaker[Session]) -> None:
    recorder = AuditRecorder(sessions, Settings())
    info = CallInfo(method="/pixelcheck.v1.AuthService/SignIn", request_id="r-traced", peer="ipv4:10.0.0.1:1")
    with tracer.start_as_current_span("rpc") as span:
        recorder.record_call(info, "OK", 3)
        recorder.record("upload.accepted", payload={"size": 1}, request_id="r-traced")
    recorder.record("upload.accepted", request_id="r-untraced")
    assert recorder.flush() is True
    with sessions() as session:
        payloads = [e.payload for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert payloads == [{"trace_id": trace_id}, {"size": 1, "trace_id": trace_id}, {}]


def test_each_analysis_stage_is_a_child_span_of_the_task(tracer: Tracer, exporter: InMemorySpanExporter,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "_tracer", tracer)  # instead of the global provider's
    with tracer.start_as_current_span("task") as task:
        clock = _StageClock(0.0, None, "img1")
        for stage in ("PROVENANCE", "PIXEL_MODEL", "FUSION", "SAVING", "DONE"):
            clock.enter(stage)
        inner = current_trace_id()
        clock.close()
        assert current_trace_id() == inner  # the task's span is current again
    spans = {s.name: s for s in exporter.get_finished_spans()}
    stages = ["analysis.decode", "analysis.provenance", "analysis.pixel_model", "analysis.fusion", "analysis.save"]
    assert set(stages) <= set(spans)
    for name in stages:
        assert spans[name].parent is not None and spans[name].parent.span_id == task.get_span_context().span_id
        assert spans[name].attributes["pixelcheck.image_id"] == "img1"
