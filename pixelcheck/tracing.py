"""OpenTelemetry tracing: off unless settings.otlp_endpoint is set, then OTLP/gRPC export of every process's spans.

With tracing on, `configure_tracing` installs the process's TracerProvider (W3C trace context, the default
propagator) and the standard instrumentations: Celery (context carried in task headers, producer and
consumer spans), SQLAlchemy (the given engine) and Redis. The gRPC server adds `server_interceptor()`.
Database and Redis calls outside a traced request or task (health checks, the audit writer, polling) start
no trace of their own. Code elsewhere only uses the OpenTelemetry API (`stage_span`, `current_trace_id`),
which costs nearly nothing while no provider is installed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.util.types import Attributes
from sqlalchemy import Engine

from pixelcheck.settings import Settings

log = logging.getLogger("pixelcheck.tracing")
SERVICE_NAME = "pixelcheck"
_tracer = trace.get_tracer("pixelcheck")


def current_trace_id() -> str:
    """The current span's trace id as 32 hex digits; "" outside a recorded trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


@contextmanager
def stage_span(name: str, attributes: Attributes = None) -> Iterator[trace.Span]:
    """A span named name, child of the current one, current while the block runs."""
    with _tracer.start_as_current_span(name, attributes=attributes) as span:
        yield span


@dataclass
class Tracing:
    """The process's tracing, once configured: shutdown() exports what is buffered."""

    provider: Any  # opentelemetry.sdk.trace.TracerProvider

    def server_interceptor(self) -> Any:
        """The standard grpc.aio server interceptor: a SERVER span per RPC (all four kinds), the
        client's traceparent/tracestate as its parent. Health checks are left out (probes are noise)."""
        from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

        return aio_server_interceptor(tracer_provider=self.provider,
                                      filter_=filters.negate(filters.health_check()))

    def shutdown(self) -> None:
        self.provider.shutdown()


def _sampler() -> Any:
    from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult

    class NoLoneClientRoots(Sampler):
        """Starts traces for RPCs, tasks and our own spans; never for a lone database or Redis call."""

        def should_sample(self, parent_context: Any, trace_id: int, name: str,
                          kind: trace.SpanKind | None = None, attributes: Attributes = None,
                          links: Sequence[trace.Link] | None = None, trace_state: Any = None) -> SamplingResult:
            if kind == trace.SpanKind.CLIENT:
                return SamplingResult(Decision.DROP)
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

        def get_description(self) -> str:
            return "NoLoneClientRoots"

    return ParentBased(root=NoLoneClientRoots())


def configure_tracing(settings: Settings, *, role: str, engine: Engine | None = None) -> Tracing | None:
    """Install tracing for this process when settings.otlp_endpoint is set; None (and nothing done) otherwise.

    role ("server", "worker", "cli") becomes the resource attribute `pixelcheck.role`.
    Call after any fork (a worker calls it in each pool process); a later call in the same process returns
    the provider already installed (OpenTelemetry keeps one per process) without instrumenting again.
    """
    if not settings.otlp_endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    installed = trace.get_tracer_provider()
    if isinstance(installed, TracerProvider):  # a second container in this process: one provider per process
        return Tracing(installed)
    resource = Resource.create({"pixelcheck.role": role})  # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES apply
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource, sampler=_sampler())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    trace.set_tracer_provider(provider)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    if engine is not None:
        # The instrumentation declares sqlalchemy<2.1 but uses only engine events, stable in 2.1.
        SQLAlchemyInstrumentor().instrument(engine=engine, tracer_provider=provider, skip_dep_check=True)
    log.info("tracing on: OTLP spans to %s", settings.otlp_endpoint)
    return Tracing(provider)
