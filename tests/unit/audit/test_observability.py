"""Operational signals: the call observer feeds audit and metrics; JSON logs carry the call's fields."""

from __future__ import annotations

import json
import logging
import math

from prometheus_client import generate_latest

from pixelcheck.api.calls import CallInfo
from pixelcheck.iam.principal import Principal
from pixelcheck.metrics import CallObserver, Metrics
from pixelcheck.observability import JsonFormatter

METHOD = "/pixelcheck.v1.AuthService/GetCurrentUser"


class FakeRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def record_call(self, info: CallInfo, code: str, duration_ms: int) -> None:
        self.calls.append((info.method, code, duration_ms))


def test_every_finished_call_is_audited_and_counted_by_method_and_code() -> None:
    recorder, metrics = FakeRecorder(), Metrics()
    observer = CallObserver(recorder, metrics)  # type: ignore[arg-type]
    info = CallInfo(method=METHOD, request_id="r1", peer="ipv4:127.0.0.1:1",
                    principal=Principal("u1", frozenset({"USER"})))
    observer.record_call(info, "OK", 12)
    observer.record_call(info, "OK", 3)
    observer.record_call(info, "UNAUTHENTICATED", 1)
    assert recorder.calls == [(METHOD, "OK", 12), (METHOD, "OK", 3), (METHOD, "UNAUTHENTICATED", 1)]
    sample = metrics.registry.get_sample_value
    assert sample("pixelcheck_rpc_calls_total", {"method": METHOD, "code": "OK"}) == 2
    assert sample("pixelcheck_rpc_calls_total", {"method": METHOD, "code": "UNAUTHENTICATED"}) == 1
    assert sample("pixelcheck_rpc_duration_seconds_count", {"method": METHOD, "code": "OK"}) == 2
    assert sample("pixelcheck_rpc_duration_seconds_sum", {"method": METHOD, "code": "OK"}) == 0.015


def test_metrics_of_two_processes_in_one_interpreter_do_not_collide() -> None:
    first, second = Metrics(), Metrics()
    first.upload_bytes.inc(100)
    assert second.registry.get_sample_value("pixelcheck_upload_bytes_total") == 0


def test_exposition_names_every_signal() -> None:
    metrics = Metrics(queue_depth=lambda: 7)
    metrics.observe_stage("PIXEL_MODEL", 0.2)
    metrics.worker_failures.labels("pixelcheck.analyze_image").inc()
    text = generate_latest(metrics.registry).decode()
    for name in ("pixelcheck_rpc_calls_total", "pixelcheck_rpc_duration_seconds", "pixelcheck_upload_bytes_total",
                 "pixelcheck_analysis_queue_depth 7.0", "pixelcheck_analysis_stage_duration_seconds_bucket",
                 "pixelcheck_worker_failures_total", "pixelcheck_audit_write_failures_total",
                 "pixelcheck_audit_dropped_events_total"):
        assert name in text


def test_queue_depth_is_nan_not_a_failed_scrape_while_the_broker_is_down() -> None:
    def broker_down() -> int:
        raise ConnectionError("redis down")

    metrics = Metrics(queue_depth=broker_down)
    assert math.isnan(metrics.registry.get_sample_value("pixelcheck_analysis_queue_depth") or 0.0)


def test_json_log_line_carries_request_id_method_actor_code_and_duration() -> None:
    record = logging.LogRecord("pixelcheck.rpc", logging.INFO, __file__, 1, "rpc %s", (METHOD,), None)
    for key, value in {"request_id": "r1", "method": METHOD, "actor": "u1", "code": "OK",
                       "duration_ms": 4}.items():
        setattr(record, key, value)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    doc = json.loads(line)
    assert {k: doc[k] for k in ("request_id", "method", "actor", "code", "duration_ms", "level")} == {
        "request_id": "r1", "method": METHOD, "actor": "u1", "code": "OK", "duration_ms": 4, "level": "INFO"}
