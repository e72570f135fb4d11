"""The composition root: builds engine, stores, queue, detector and use cases from Settings.

Nothing is built at import time; `build_container` is called once per process (server, worker, CLI).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.blobs import BlobStore, make_blob_store
from pixelcheck.db import check_schema, explained_problems, make_engine, make_session_factory
from pixelcheck.keys import RedisKeys
from pixelcheck.scheduling.fair_queue import FairQueue
from pixelcheck.settings import Settings
from pixelcheck.tracing import Tracing, configure_tracing
from pixelcheck.worker import ANALYSIS_PRIORITY, RUN_NEXT, TaskQueue, broker_lists, make_celery

if TYPE_CHECKING:
    from pixelcheck.analysis.detector import Detector
    from pixelcheck.analysis.pipeline import AnalysisPipeline
    from pixelcheck.analysis.progress import ProgressHub
    from pixelcheck.analysis.reconciler import Reconciler
    from pixelcheck.analysis.region_maps import RegionMaps
    from pixelcheck.analysis.service import Results
    from pixelcheck.api.client_address import ClientAddresses
    from pixelcheck.api.interceptors import AuditSink
    from pixelcheck.audit.recorder import AuditRecorder
    from pixelcheck.audit.service import AuditTrail
    from pixelcheck.iam.revocation import AccessVerifier, RevocationCache
    from pixelcheck.iam.service import Identity
    from pixelcheck.iam.service_tokens import ServiceTokens
    from pixelcheck.iam.tokens import TokenService
    from pixelcheck.ingestion.importing import UrlImports
    from pixelcheck.ingestion.service import Ingestion
    from pixelcheck.ingestion.url_policy import FetchPolicy
    from pixelcheck.metrics import Metrics
    from pixelcheck.reports.service import Reports
    from pixelcheck.scheduling.admission import Admission
    from pixelcheck.scheduling.dispatch import FairDispatcher
    from pixelcheck.scheduling.policy import SchedulingPolicy
    from pixelcheck.webhooks.delivery import WebhookSender
    from pixelcheck.webhooks.service import Webhooks

log = logging.getLogger("pixelcheck")


def model_dir(settings: Settings) -> Path:
    """The detector model folder: PIXELCHECK_MODEL_DIR, or the model shipped with the package when unset."""
    if settings.model_dir:
        return Path(settings.model_dir)
    from pixelcheck.analysis.shipped_model import SHIPPED_MODEL_DIR

    return SHIPPED_MODEL_DIR


@dataclass
class Container:
    """Everything a process needs, built from one Settings. `role` is "server", "worker" or "cli"."""

    settings: Settings
    role: str
    engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    redis: redis.Redis
    keys: RedisKeys
    blobs: BlobStore
    queue: TaskQueue
    tracing: Tracing | None = None  # None: tracing off (no PIXELCHECK_OTLP_ENDPOINT)
    _closers: list[Any] = field(default_factory=list)

    @cached_property
    def detector(self) -> Detector:
        """The detector named by settings, loaded (and digest-checked) once per process."""
        from pixelcheck.analysis.detector import load_detector

        threshold = self.settings.detector_threshold if self.settings.detector_threshold >= 0 else None
        return load_detector(model_dir(self.settings), threshold=threshold,
                             max_frames=self.settings.animation_analysed_frames,
                             max_decoded_frames=self.settings.video_max_frames)

    # -- ingestion and analysis (pixelcheck.ingestion, pixelcheck.analysis) ------------------------
    @cached_property
    def ingestion(self) -> Ingestion:
        """Upload, read, list and delete images."""
        from pixelcheck.ingestion.service import Ingestion
        from pixelcheck.ingestion.validation import UploadLimits
        from pixelcheck.paging import token_key

        s = self.settings
        limits = UploadLimits(max_bytes=s.upload_max_bytes, max_chunk_bytes=s.upload_chunk_max_bytes,
                              max_side=s.image_max_side, max_pixels=s.image_max_pixels,
                              max_frames=s.animation_max_frames,
                              max_duration_ms=int(s.animation_max_duration_seconds * 1000),
                              max_animation_pixels=s.animation_max_megapixels * 1_000_000,
                              analysed_frames=s.animation_analysed_frames, video_max_bytes=s.video_max_bytes,
                              video_max_duration_ms=int(s.video_max_duration_seconds * 1000),
                              video_max_side=s.video_max_side, video_max_pixels=s.video_max_pixels,
                              video_max_frames=s.video_max_frames,
                              video_max_decoded_pixels=s.video_max_megapixels * 1_000_000)
        return Ingestion(sessions=self.sessions, read_sessions=self.read_sessions, blobs=self.blobs,
                         queue=self.queue, audit=self.audit_recorder, limits=limits,
                         page_token_key=token_key(s.jwt_secret, "images"), share_of=self.scheduling_policy.share,
                         spool_dir=s.spool_dir)

    # -- scheduling (pixelcheck.scheduling) -------------------------------------------------------
    @cached_property
    def scheduling_policy(self) -> SchedulingPolicy:
        """Principal classes' weights, caps and upload rates."""
        from pixelcheck.scheduling.policy import SchedulingPolicy

        return SchedulingPolicy.from_settings(self.settings)

    @cached_property
    def admission(self) -> Admission:
        """Upload-rate buckets and queue caps, asked before an upload's bytes are read."""
        from pixelcheck.scheduling.admission import Admission

        return Admission(self.redis, self.keys.prefix, self.scheduling_policy, self.queue.fair,
                         on_refusal=lambda reason: self.metrics.upload_refusals.labels(reason).inc(),
                         stored_pending=self.results.pending_count)

    @cached_property
    def fair_dispatcher(self) -> FairDispatcher:
        """Runs the fair queue's items on a worker; idle workers then make an unrequested region map."""
        from pixelcheck.scheduling.dispatch import FairDispatcher

        def map_for_report(image_id: str) -> str:
            outcome = self.region_maps.run(image_id)
            self.metrics.region_map_runs.labels("report", outcome).inc()
            return outcome

        return FairDispatcher(self.queue.fair, analyse=self.analysis_pipeline.run, map_regions=map_for_report,
                              when_idle=self.region_maps.idle_map_candidate,
                              observe_wait=self.metrics.observe_wait, flush_audit=self.audit_recorder.flush,
                              nudge=self.queue.nudge)

    def broker_waiting(self, steps: tuple[int, ...]) -> int:
        """Tasks waiting in the broker at these priority steps."""
        from pixelcheck.worker import broker_lists

        lists = broker_lists(self.keys)
        pipe = self.redis.pipeline(transaction=False)
        for step in steps:
            pipe.llen(lists[step])
        return int(sum(pipe.execute()))

    @cached_property
    def url_imports(self) -> UrlImports:
        """ImportImage: the SSRF-guarded fetch, the per-user import rate limit, then the upload path."""
        from pixelcheck.ingestion.import_quota import ImportQuota
        from pixelcheck.ingestion.importing import UrlImports
        from pixelcheck.ingestion.url_fetch import FetchLimits, UrlFetcher

        s = self.settings
        limits = FetchLimits(max_bytes=s.upload_max_bytes, video_max_bytes=s.video_max_bytes, spool_dir=s.spool_dir,
                             connect_timeout_seconds=s.url_fetch_connect_timeout_seconds,
                             read_timeout_seconds=s.url_fetch_read_timeout_seconds,
                             total_timeout_seconds=s.url_fetch_timeout_seconds)
        quota = ImportQuota(self.redis, self.keys, limit=s.url_import_rate_limit,
                            window_seconds=s.url_import_rate_window_seconds)
        return UrlImports(ingestion=self.ingestion, fetcher=UrlFetcher(self.url_fetch_policy, limits), quota=quota,
                          admit=self.admission.admit_upload)

    @cached_property
    def results(self) -> Results:
        """Read analyses and the detector's live statistics."""
        from pixelcheck.analysis.service import Results
        from pixelcheck.paging import token_key

        return Results(read_sessions=self.read_sessions,
                       page_token_key=token_key(self.settings.jwt_secret, "results"))

    @cached_property
    def analysis_pipeline(self) -> AnalysisPipeline:
        """Runs analyses on a worker and re-finds the ones a crash or a broker restart lost."""
        from datetime import timedelta

        from pixelcheck.analysis.pipeline import AnalysisPipeline
        from pixelcheck.analysis.progress import ProgressPublisher

        s = self.settings
        return AnalysisPipeline(
            sessions=self.sessions, read_sessions=self.read_sessions, blobs=self.blobs,
            detector=lambda: self.detector,
            publisher=ProgressPublisher(self.redis, self.keys), audit=self.audit_recorder, reports=self.reports,
            report_queue=self.queue, stale_after=timedelta(seconds=s.analysis_stale_seconds),
            max_attempts=s.analysis_max_attempts, stage_observer=self.metrics.observe_stage, webhooks=self.webhooks,
            spool_dir=s.spool_dir)

    @cached_property
    def reconciler(self) -> Reconciler:
        """Re-queues what a broker restart or a killed worker lost; run by beat's periodic task."""
        from datetime import timedelta

        from pixelcheck.analysis.reconciler import Reconciler
        from pixelcheck.reports.recovery import ReportRecovery

        s = self.settings
        reports = ReportRecovery(sessions=self.sessions, enqueue_build=self.queue.build_report,
                                 requested_after=timedelta(seconds=s.analysis_stale_seconds),
                                 generating_after=timedelta(seconds=max(s.analysis_stale_seconds,
                                                                        s.task_time_limit_seconds)))
        return Reconciler(pipeline=self.analysis_pipeline, region_maps=self.region_maps, reports=reports,
                          queue=self.queue, dispatcher=self.fair_dispatcher)

    @cached_property
    def region_maps(self) -> RegionMaps:
        """Scores region maps on a worker (after the verdict, yielding to it) and serves their pictures."""
        from datetime import timedelta

        from pixelcheck.analysis.region_map_ports import RedisMapRequests
        from pixelcheck.analysis.region_maps import RegionMaps
        from pixelcheck.worker import PRIORITY_STEPS

        s = self.settings
        # Anything in the broker but idle-time maps (the last step) is work an idle map must yield to.
        return RegionMaps(sessions=self.sessions, read_sessions=self.read_sessions, blobs=self.blobs,
                          detector=lambda: self.detector, queue=self.queue,
                          others_waiting=lambda: self.broker_waiting(PRIORITY_STEPS[:-1]) > 0,
                          broker_empty=lambda: self.broker_waiting(PRIORITY_STEPS) == 0,
                          requests=RedisMapRequests(self.redis, self.keys.prefix, s.analysis_stale_seconds),
                          stale_after=timedelta(seconds=s.analysis_stale_seconds),
                          max_attempts=s.analysis_max_attempts,
                          idle_max_age=timedelta(seconds=s.region_map_idle_max_age_seconds), spool_dir=s.spool_dir)

    @cached_property
    def progress_hub(self) -> ProgressHub:
        """The server's one subscription to analysis progress, shared by every WatchAnalysis stream."""
        from pixelcheck.analysis.progress import ProgressHub

        hub = ProgressHub(self.settings.redis_url, self.keys)
        return hub

    # -- identity (pixelcheck.iam) ----------------------------------------------------------------
    @cached_property
    def tokens(self) -> TokenService:
        from pixelcheck.iam.tokens import TokenService

        return TokenService(self.settings)

    @cached_property
    def identity(self) -> Identity:
        """Sign-up, sign-in, token rotation and roles."""
        from pixelcheck.iam.lockout import SigninThrottle, ThrottleLimits
        from pixelcheck.iam.passwords import Passwords
        from pixelcheck.iam.service import Identity

        s = self.settings
        limits = ThrottleLimits(
            pair_max=s.signin_max_failures, window_seconds=s.signin_window_seconds,
            login_max=s.signin_login_max_failures, login_delay_seconds=s.signin_login_delay_seconds,
            login_max_delay_seconds=s.signin_login_max_delay_seconds, address_max=s.signin_address_max_failures,
            familiar_seconds=s.signin_familiar_address_seconds)
        throttle = SigninThrottle(self.redis, self.keys, limits)
        return Identity(sessions=self.sessions, read_sessions=self.read_sessions,
                        passwords=Passwords.from_settings(s), tokens=self.tokens, throttle=throttle,
                        audit=self.audit_recorder, refresh_ttl_seconds=s.refresh_token_ttl_seconds,
                        account_cache_seconds=s.account_cache_seconds)

    @cached_property
    def service_tokens(self) -> ServiceTokens:
        """Issue, list and revoke service tokens."""
        from pixelcheck.iam.service_tokens import ServiceTokens
        from pixelcheck.paging import token_key

        return ServiceTokens(sessions=self.sessions, read_sessions=self.read_sessions, tokens=self.tokens,
                             audit=self.audit_recorder,
                             page_token_key=token_key(self.settings.jwt_secret, "service-tokens"))

    @cached_property
    def revocations(self) -> RevocationCache:
        """This process's view of revoked tokens and token versions (kept fresh by the server)."""
        from pixelcheck.iam.revocation import RevocationCache

        s = self.settings
        return RevocationCache(self.read_sessions, self.sessions, access_ttl_seconds=s.access_token_ttl_seconds,
                               refresh_seconds=s.revocation_refresh_seconds,
                               last_used_flush_seconds=s.service_token_last_used_flush_seconds)

    @cached_property
    def access_verifier(self) -> AccessVerifier:
        """Verifies an access token and refuses revoked or outdated ones, without I/O."""
        from pixelcheck.iam.revocation import AccessVerifier

        return AccessVerifier(self.tokens, self.revocations)

    @cached_property
    def client_addresses(self) -> ClientAddresses:
        """The caller's address from the peer, or x-forwarded-for behind PIXELCHECK_TRUSTED_PROXIES."""
        from pixelcheck.api.client_address import ClientAddresses

        return ClientAddresses(self.settings.trusted_proxy_networks)

    # -- audit (pixelcheck.audit) -------------------------------------------------------------------
    @cached_property
    def audit_recorder(self) -> AuditRecorder:
        """Buffers audit events and writes them in batches, off the request path."""
        from pixelcheck.audit.recorder import AuditRecorder

        recorder = AuditRecorder(self.sessions, self.settings,
                                 on_write_failure=self.metrics.audit_write_failures.inc,
                                 on_drop=self.metrics.audit_dropped_events.inc)
        # Shutdown waits for the audit trail at most as long as for calls in flight.
        self._closers.append(lambda: recorder.close(timeout=self.settings.grace_seconds))
        return recorder

    @cached_property
    def audit_trail(self) -> AuditTrail:
        """The audit use cases: record, list, verify, usage statistics."""
        from pixelcheck.audit.service import AuditTrail

        return AuditTrail(self.sessions, self.read_sessions, self.settings)

    @cached_property
    def metrics(self) -> Metrics:
        """This process's Prometheus metrics (served on settings.metrics_port when > 0)."""
        from pixelcheck.metrics import Metrics, QueueSnapshot
        from pixelcheck.worker import PRIORITY_STEPS

        def snapshot() -> QueueSnapshot:
            return QueueSnapshot(broker={step: self.broker_waiting((step,)) for step in PRIORITY_STEPS},
                                 fair=self.queue.fair.depths())

        return Metrics(queue_depth=self.queue.fair.waiting, queue_snapshot=snapshot)

    # -- reports (pixelcheck.reports) ---------------------------------------------------------------
    @cached_property
    def reports(self) -> Reports:
        """The report use cases: request, read, list, download, build, and the automatic-report hook."""
        from pixelcheck.paging import token_key
        from pixelcheck.reports.service import Reports

        return Reports(sessions=self.sessions, read_sessions=self.read_sessions, blobs=self.blobs,
                       enqueue_build=self.queue.build_report, model_info=lambda: self.detector.info,
                       audit=self.audit_recorder, max_images=self.settings.report_max_images,
                       page_token_key=token_key(self.settings.jwt_secret, "reports"), webhooks=self.webhooks,
                       spool_dir=self.settings.spool_dir)

    # -- webhooks (pixelcheck.webhooks) -----------------------------------------------------------
    @cached_property
    def url_fetch_policy(self) -> FetchPolicy:
        """The address rules of ImportImage and webhook targets, with PIXELCHECK_URL_FETCH_ALLOW's exceptions."""
        from pixelcheck.ingestion.url_policy import FetchPolicy

        s = self.settings
        networks, hosts = s.url_fetch_allowed
        return FetchPolicy(allowed_networks=networks, allowed_hosts=hosts, extra_ports=s.url_fetch_extra_ports)

    @cached_property
    def webhooks(self) -> Webhooks:
        """Endpoint registration, delivery listing, and the outbox analyses and reports announce events into."""
        from pixelcheck.paging import token_key
        from pixelcheck.webhooks.service import Webhooks

        return Webhooks(sessions=self.sessions, read_sessions=self.read_sessions, audit=self.audit_recorder,
                        queue=self.queue, page_token_key=token_key(self.settings.jwt_secret, "webhooks"),
                        max_endpoints=self.settings.webhook_max_endpoints)

    @cached_property
    def webhook_sender(self) -> WebhookSender:
        """Makes delivery attempts on a worker."""
        from datetime import timedelta

        from pixelcheck.webhooks.delivery import DeliveryLimits, InFlightLimiter, WebhookSender

        s = self.settings
        limits = DeliveryLimits(
            connect_timeout_seconds=s.webhook_connect_timeout_seconds, timeout_seconds=s.webhook_timeout_seconds,
            retry_base_seconds=s.webhook_retry_base_seconds, retry_max_delay_seconds=s.webhook_retry_max_delay_seconds,
            retry_window=timedelta(seconds=s.webhook_retry_window_seconds), max_in_flight=s.webhook_max_in_flight,
            lease_margin_seconds=s.webhook_lease_margin_seconds)
        return WebhookSender(sessions=self.sessions, policy=self.url_fetch_policy, limits=limits,
                             limiter=InFlightLimiter(self.redis, self.keys, s.webhook_max_in_flight), queue=self.queue)

    @property
    def call_observer(self) -> AuditSink:
        """What the server's call interceptor reports every finished RPC to: audit trail and metrics."""
        from pixelcheck.metrics import CallObserver

        return CallObserver(self.audit_recorder, self.metrics)

    async def on_server_starting(self) -> None:
        self.audit_recorder.start()
        self.revocations.start()
        self._closers.append(self.revocations.close)
        if self.settings.metrics_port > 0:
            from pixelcheck.metrics import start_metrics_server

            start_metrics_server(self.settings.metrics_port, self.metrics)

    async def on_server_stopped(self) -> None:
        await self.progress_hub.close()
        self.audit_recorder.flush(timeout=self.settings.grace_seconds)

    def close(self) -> None:
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception:  # closing is best effort: one failure must not keep the rest open
                log.exception("error while closing %r", closer)
        self.redis.close()
        self.engine.dispose()
        if self.tracing is not None:
            self.tracing.shutdown()  # exports the spans still buffered


def build_container(settings: Settings, *, role: str = "server") -> Container:
    """Build the shared infrastructure for one process."""
    engine = make_engine(settings.resolved_database_url, pool_size=max(5, settings.grpc_max_workers))
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=5,
                                  health_check_interval=30)
    tracing = configure_tracing(settings, role=role, engine=engine)
    read_sessions = make_session_factory(engine, readonly=True)
    return Container(
        settings=settings,
        role=role,
        engine=engine,
        sessions=make_session_factory(engine),
        read_sessions=read_sessions,
        redis=client,
        keys=RedisKeys(settings.redis_key_prefix),
        blobs=make_blob_store(settings, read_sessions),
        queue=TaskQueue(make_celery(settings), FairQueue(
            client, settings.redis_key_prefix, running_timeout_seconds=settings.task_time_limit_seconds,
            token_list=broker_lists(RedisKeys(settings.redis_key_prefix))[ANALYSIS_PRIORITY], token_task=RUN_NEXT)),
        tracing=tracing,
    )


@contextmanager
def operator_container(settings: Settings) -> Iterator[Container]:
    """The container of an operator command (`pixelcheck users|token|audit …`), closed at the end.

    The database is checked first and its failures are explained, so a bad URL, an unreachable server or a
    missing or outdated schema raises DatabaseProblem (one line naming the fix), never a traceback.
    """
    url = settings.resolved_database_url
    check_schema(url)
    container = build_container(settings, role="cli")
    try:
        with explained_problems(url):
            yield container
    finally:
        container.close()  # also writes the audit events recorded by the command
