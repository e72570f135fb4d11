"""Prometheus metrics (prometheus-client) and the observer every finished RPC is reported to.

Each process builds one `Metrics` with a registry of its own (no import-time globals, so several
in-process servers in tests never collide) and serves it with `start_metrics_server` when
settings.metrics_port > 0. Other contexts record through the container: `container.metrics.upload_bytes
.inc(n)` when an upload is accepted, `observe_stage(stage, seconds)` per analysis stage, and
`connect_worker_signals()` in a worker process to count task failures.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from pixelcheck.api.calls import CallInfo
    from pixelcheck.audit.recorder import AuditRecorder
    from pixelcheck.scheduling.fair_queue import ClassDepth

log = logging.getLogger("pixelcheck.metrics")

# Seconds: from a cached unary read (~1 ms) to a long upload or report download (~minutes).
RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Seconds an analysis waited for a worker: from an idle service (~ms) to a deep backlog (~hour).
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


@dataclass(frozen=True)
class QueueSnapshot:
    """Read at scrape time: broker tasks waiting per priority step, and the fair queue per principal class."""

    broker: dict[int, int]
    fair: list[ClassDepth]


class _QueueCollector(Collector):
    """Queue depth and oldest-waiting age, read from Redis when Prometheus scrapes (never failing it)."""

    def __init__(self, read: Callable[[], QueueSnapshot]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        broker = GaugeMetricFamily("pixelcheck_broker_queue_depth",
                                   "Celery tasks waiting in the broker, by priority step (0 requested region maps "
                                   "and reports, 3 fair-queue turns, 9 idle-time region maps).", labels=["priority"])
        depth = GaugeMetricFamily("pixelcheck_fair_queue_depth", "Analyses waiting in the fair queue, by "
                                  "principal class.", labels=["principal_class"])
        oldest = GaugeMetricFamily("pixelcheck_fair_queue_oldest_age_seconds", "How long the oldest waiting "
                                   "analysis of each principal class has waited.", labels=["principal_class"])
        try:
            snapshot = self._read()
        except Exception:  # a scrape must succeed while Redis is down: the series are simply absent
            log.debug("queue snapshot failed", exc_info=True)
        else:
            for step, count in snapshot.broker.items():
                broker.add_metric([str(step)], count)
            for entry in snapshot.fair:
                depth.add_metric([entry.principal_class], entry.waiting)
                oldest.add_metric([entry.principal_class], entry.oldest_age_seconds)
        yield broker
        yield depth
        yield oldest

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


class Metrics:
    """The process's metrics, in their own registry."""

    def __init__(self, queue_depth: Callable[[], int] | None = None,
                 queue_snapshot: Callable[[], QueueSnapshot] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.rpc_calls = Counter("pixelcheck_rpc_calls", "Finished RPCs by method and status code.",
                                 ["method", "code"], registry=r)
        self.rpc_latency = Histogram("pixelcheck_rpc_duration_seconds", "RPC duration by method and code.",
                                     ["method", "code"], buckets=RPC_BUCKETS, registry=r)
        self.upload_bytes = Counter("pixelcheck_upload_bytes", "Bytes of accepted uploads.", registry=r)
        self.analysis_stage_seconds = Histogram(
            "pixelcheck_analysis_stage_duration_seconds", "Time spent in each analysis stage.", ["stage"],
            buckets=STAGE_BUCKETS, registry=r)
        self.worker_failures = Counter("pixelcheck_worker_failures", "Worker tasks that raised, by task.",
                                       ["task"], registry=r)
        self.audit_write_failures = Counter("pixelcheck_audit_write_failures",
                                            "Audit batches that could not be written.", registry=r)
        self.audit_dropped_events = Counter("pixelcheck_audit_dropped_events",
                                            "Audit events lost to a full buffer or a rejected write.",
                                            registry=r)
        self.analysis_queue_depth = Gauge("pixelcheck_analysis_queue_depth",
                                          "Analyses waiting in the fair queue, all principals.", registry=r)
        if queue_depth is not None:
            self.analysis_queue_depth.set_function(_never_failing(queue_depth))
        self.analysis_wait_seconds = Histogram(
            "pixelcheck_analysis_wait_seconds", "How long fair-queue items waited for a worker, by principal "
            "class.", ["principal_class"], buckets=WAIT_BUCKETS, registry=r)
        self.upload_refusals = Counter("pixelcheck_upload_refusals", "Uploads refused by admission control, by "
                                       "reason (UPLOAD_RATE_LIMITED, ANALYSIS_QUEUE_FULL).", ["reason"], registry=r)
        self.region_map_runs = Counter("pixelcheck_region_map_runs", "Region-map runs by trigger (requested, "
                                       "report, idle) and outcome.", ["trigger", "outcome"], registry=r)
        if queue_snapshot is not None:
            r.register(_QueueCollector(queue_snapshot))

    def observe_rpc(self, method: str, code: str, duration_ms: int) -> None:
        """Count one finished RPC and its latency."""
        self.rpc_calls.labels(method, code).inc()
        self.rpc_latency.labels(method, code).observe(duration_ms / 1000.0)

    def observe_wait(self, principal_class: str, seconds: float) -> None:
        """Record how long one fair-queue item waited before a worker took it."""
        self.analysis_wait_seconds.labels(principal_class).observe(seconds)

    def observe_stage(self, stage: str, seconds: float) -> None:
        """Record how long one analysis stage took."""
        self.analysis_stage_seconds.labels(stage).observe(seconds)

    def connect_worker_signals(self) -> None:
        """Count Celery task failures in this (worker) process."""
        from celery import signals

        def failed(sender: Any = None, **_: Any) -> None:
            self.worker_failures.labels(getattr(sender, "name", "unknown")).inc()

        signals.task_failure.connect(failed, weak=False)


def _never_failing(read: Callable[[], int]) -> Callable[[], float]:
    def value() -> float:
        try:
            return float(read())
        except Exception:  # a scrape must succeed while the broker is down; NaN says "unknown"
            return math.nan

    return value


def start_metrics_server(port: int, metrics: Metrics, address: str = "0.0.0.0") -> None:
    """Serve metrics over HTTP at http://address:port/metrics (port > 0)."""
    start_http_server(port, addr=address, registry=metrics.registry)
    log.info("Prometheus metrics on port %d", port)


class CallObserver:
    """What the call interceptor reports every finished RPC to: the audit trail and the metrics."""

    def __init__(self, recorder: AuditRecorder | None, metrics: Metrics | None) -> None:
        self._recorder = recorder
        self._metrics = metrics

    def record_call(self, info: CallInfo, code: str, duration_ms: int) -> None:
        """Audit and count one finished call; never raises."""
        if self._recorder is not None:
            self._recorder.record_call(info, code, duration_ms)
        if self._metrics is not None:
            try:
                self._metrics.observe_rpc(info.method, code, duration_ms)
            except Exception:  # metrics must never fail the call they describe
                log.exception("could not count the call %s", info.method)
