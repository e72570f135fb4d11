"""The composition root: builds engine, stores, queue, detector and use cases from Settings.

Nothing is built at import time; `build_container` is called once per process (server, worker, CLI).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.blobs import BlobStore, make_blob_store
from pixelcheck.db import make_engine, make_session_factory
from pixelcheck.keys import RedisKeys
from pixelcheck.settings import Settings
from pixelcheck.worker import TaskQueue, make_celery

if TYPE_CHECKING:
    from pixelcheck.analysis.detector import Detector
    from pixelcheck.api.interceptors import AuditSink
    from pixelcheck.audit.recorder import AuditRecorder
    from pixelcheck.iam.tokens import TokenService

log = logging.getLogger("pixelcheck")


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
    _closers: list[Any] = field(default_factory=list)

    @cached_property
    def detector(self) -> Detector:
        """The detector named by settings, loaded (and digest-checked) once per process."""
        from pixelcheck.analysis.detector import load_detector

        threshold = self.settings.detector_threshold if self.settings.detector_threshold >= 0 else None
        return load_detector(Path(self.settings.model_dir), threshold=threshold)

    # -- identity (pixelcheck.iam) ----------------------------------------------------------------
    @cached_property
    def tokens(self) -> TokenService:
        from pixelcheck.iam.tokens import TokenService

        return TokenService(self.settings)

    # -- audit (pixelcheck.audit) -------------------------------------------------------------------
    @cached_property
    def audit_recorder(self) -> AuditRecorder:
        """Buffers audit events and writes them in batches, off the request path."""
        from pixelcheck.audit.recorder import AuditRecorder

        recorder = AuditRecorder(self.sessions, self.settings)
        self._closers.append(recorder.close)
        return recorder

    @property
    def call_observer(self) -> AuditSink:
        """What the server's call interceptor reports every finished RPC to."""
        return self.audit_recorder

    async def on_server_starting(self) -> None:
        self.audit_recorder.start()

    async def on_server_stopped(self) -> None:
        self.audit_recorder.flush()

    def close(self) -> None:
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception:  # closing is best effort: one failure must not keep the rest open
                log.exception("error while closing %r", closer)
        self.redis.close()
        self.engine.dispose()


def build_container(settings: Settings, *, role: str = "server") -> Container:
    """Build the shared infrastructure for one process."""
    engine = make_engine(settings.resolved_database_url, pool_size=max(5, settings.grpc_max_workers))
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=5,
                                  health_check_interval=30)
    return Container(
        settings=settings,
        role=role,
        engine=engine,
        sessions=make_session_factory(engine),
        read_sessions=make_session_factory(engine, readonly=True),
        redis=client,
        keys=RedisKeys(settings.redis_key_prefix),
        blobs=make_blob_store(settings.blob_store, settings.resolved_blob_dir),
        queue=TaskQueue(make_celery(settings)),
    )
