"""The Celery app: configured from Settings, tasks named for what they do, one container per worker process.

The server only sends tasks by name (TaskQueue); it never imports task modules.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from celery import Celery, signals

from pixelcheck.keys import RedisKeys
from pixelcheck.scheduling.fair_queue import ANALYSIS, REGION_MAP, FairQueue
from pixelcheck.scheduling.policy import Share
from pixelcheck.settings import Settings

if TYPE_CHECKING:
    from datetime import datetime

    from pixelcheck.bootstrap import Container

log = logging.getLogger("pixelcheck.worker")

ANALYZE_IMAGE = "pixelcheck.analyze_image"  # one named image (messages sent before fair scheduling)
RUN_NEXT = "pixelcheck.run_next"  # the fair queue's next item, whoever's it is
BUILD_REPORT = "pixelcheck.build_report"
RECONCILE_ANALYSES = "pixelcheck.reconcile_analyses"
MAP_REGIONS = "pixelcheck.map_regions"
# Redis priorities run from 0 (taken first, the default) to 9, in the steps 0, 3, 6, 9: a region map someone
# asked for and reports first, then the fair queue's analyses, and last the maps idle workers make unasked.
REQUESTED_MAP_PRIORITY = 0
ANALYSIS_PRIORITY = 3
IDLE_MAP_PRIORITY = 9
PRIORITY_STEPS = (0, 3, 6, 9)
APPLY_RETENTION = "pixelcheck.apply_retention"
SWEEP_ORPHAN_BLOBS = "pixelcheck.sweep_orphan_blobs"
DELIVER_WEBHOOK = "pixelcheck.deliver_webhook"
DISPATCH_WEBHOOKS = "pixelcheck.dispatch_webhooks"
TASK_MODULES = ["pixelcheck.analysis.tasks", "pixelcheck.reports.tasks", "pixelcheck.audit.tasks",
                "pixelcheck.webhooks.tasks"]


def analysis_time_limit(settings: Settings) -> int:
    """The hard time limit of the tasks that run analyses: a clip's (video_time_limit_seconds), unless the
    limit of every task is larger."""
    return max(settings.task_time_limit_seconds, settings.video_time_limit_seconds)


def _soft(limit: int) -> int:
    """The soft limit, 10 s before the hard one: the task hears of it and records why it stopped."""
    return max(1, limit - 10)


def make_celery(settings: Settings, *, include_tasks: bool = False) -> Celery:
    """A Celery app on settings.redis_url with the reliability settings inference workers need."""
    keys = RedisKeys(settings.redis_key_prefix)
    reconcile_every = max(5.0, settings.analysis_stale_seconds / 4)
    analysis_limit = analysis_time_limit(settings)
    app = Celery("pixelcheck", broker=settings.redis_url, include=TASK_MODULES if include_tasks else [])
    app.conf.update(
        task_default_queue=keys.celery_queue,
        task_routes={DELIVER_WEBHOOK: {"queue": keys.webhook_queue}, DISPATCH_WEBHOOKS: {"queue": keys.webhook_queue}},
        task_acks_late=True,  # a task is acknowledged only after it finished ...
        task_reject_on_worker_lost=True,  # ... and redelivered when its worker died mid-way
        worker_prefetch_multiplier=1,  # an inference worker holds one task at a time
        task_time_limit=settings.task_time_limit_seconds,
        task_soft_time_limit=_soft(settings.task_time_limit_seconds),
        # An analysis may be of a clip: every frame of it is decoded, which takes minutes for a long 4K one (the
        # clip rules keep that within video_time_limit_seconds). The tasks that run analyses get that limit.
        task_annotations={name: {"time_limit": analysis_limit, "soft_time_limit": _soft(analysis_limit)}
                          for name in (RUN_NEXT, ANALYZE_IMAGE)},
        broker_transport_options={
            # Redelivery of unacknowledged tasks: comfortably above the longest task time limit.
            "visibility_timeout": max(settings.task_time_limit_seconds * 3, analysis_limit + 60),
            "global_keyprefix": keys.celery_keyprefix,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        worker_concurrency=settings.worker_concurrency,
        beat_schedule={
            "reconcile-analyses": {"task": RECONCILE_ANALYSES, "schedule": reconcile_every},
            "apply-retention": {"task": APPLY_RETENTION, "schedule": 3600.0},
            # Webhook deliveries whose task was lost (broker restart) or whose worker died: the outbox is the truth.
            "dispatch-webhooks": {"task": DISPATCH_WEBHOOKS, "schedule": settings.webhook_dispatch_interval_seconds},
            # Orphans become removable once older than the grace period: look twice per period, at most hourly.
            "sweep-orphan-blobs": {"task": SWEEP_ORPHAN_BLOBS,
                                   "schedule": float(min(3600, max(60, settings.blob_orphan_grace_seconds // 2)))},
        },
        timezone="UTC",
    )
    return app


def broker_lists(keys: RedisKeys) -> dict[int, str]:
    """The Redis list of each priority step of our Celery queue (kombu's naming: "<queue>\\x06\\x16<step>")."""
    base = f"{keys.celery_keyprefix}{keys.celery_queue}"
    return {step: base if step == 0 else f"{base}\x06\x16{step}" for step in PRIORITY_STEPS}


class TaskQueue:
    """Sends tasks by name. Call only after the transaction that created the task's input committed.

    Analyses (and the region maps a report needs) go into the fair queue, each with one RUN_NEXT token in
    the broker; other tasks go to the broker directly. An item already waiting gets no second token: the
    reconciler re-queues analyses that have waited long, and one token for each of them on every pass would
    grow the broker without bound while a backlog lasts (`nudge` sends it one token instead).
    """

    def __init__(self, app: Celery, fair: FairQueue) -> None:
        self._app = app
        self.fair = fair

    def analyze_image(self, image_id: str, share: Share, cost: int = 1) -> None:
        """Queue an analysis as `share`'s work, taking `cost` turns (ingestion.validation.analysis_cost)."""
        self._run_next(share, ANALYSIS, image_id, cost)

    def reanalyze_image(self, image_id: str, owner_id: str, accepted: datetime | None = None, cost: int = 1) -> bool:
        """Queue a lost analysis again, as its owner's work with the share last seen for them, taking its `cost`
        turns, in its first place in its owner's line when `accepted` says when it was accepted; False when it
        was not lost but is still waiting in the fair queue."""
        at = None if accepted is None else int(accepted.timestamp() * 1000)
        return self._run_next(self.fair.share_of(owner_id), ANALYSIS, image_id, cost, enqueued_ms=at)

    def map_for_report(self, image_id: str, owner_id: str) -> None:
        """Queue the region map an automatic report waits for, as its owner's work."""
        self._run_next(self.fair.share_of(owner_id), REGION_MAP, image_id)

    def build_report(self, report_id: str) -> None:
        self._app.send_task(BUILD_REPORT, args=[report_id])

    def map_regions(self, image_id: str, *, requested: bool, frame_index: int | None = None) -> None:
        """Send a region map: one somebody asked for (ahead of every backlog), or one an idle worker makes; with
        frame_index, the map of that frame of an animation or clip (asked for: frame maps are never idle work)."""
        self._app.send_task(MAP_REGIONS, args=[image_id, not requested],
                            kwargs=None if frame_index is None else {"frame_index": frame_index},
                            priority=REQUESTED_MAP_PRIORITY if requested else IDLE_MAP_PRIORITY)

    def nudge(self) -> None:
        """One RUN_NEXT token for items that wait although their own token may be gone (a broker that lost
        its last writes): a token takes whichever item's turn it is, and finds nothing once all are done."""
        self._app.send_task(RUN_NEXT, priority=ANALYSIS_PRIORITY)

    def _run_next(self, share: Share, kind: str, image_id: str, cost: int = 1, *,
                  enqueued_ms: int | None = None) -> bool:
        added = self.fair.push(share, kind, image_id, cost, enqueued_ms=enqueued_ms)
        if added:
            self._app.send_task(RUN_NEXT, priority=ANALYSIS_PRIORITY)
        return added

    def deliver_webhook(self, delivery_id: str, countdown: float = 0.0) -> None:
        self._app.send_task(DELIVER_WEBHOOK, args=[delivery_id], countdown=countdown or None)


class _WorkerState:
    container: Container | None = None
    lock = threading.Lock()  # a webhooks worker's threads ask for the container at once
    # An inference worker's processes run analyses (with a prompt lane) and export metrics; a webhooks worker beside
    # them does neither.
    runs_analyses = True


def worker_container() -> Container:
    """The container of this worker process, built once when the process starts."""
    if _WorkerState.container is not None:
        return _WorkerState.container
    with _WorkerState.lock:
        if _WorkerState.container is not None:
            return _WorkerState.container
        from pixelcheck.bootstrap import build_container

        container = build_container(Settings.from_env(), role="worker")
        container.metrics.connect_worker_signals()
        if container.settings.worker_metrics_port > 0 and _WorkerState.runs_analyses:
            from billiard.process import current_process

            from pixelcheck.metrics import start_metrics_server

            # One port per pool process: worker_metrics_port + the process's pool index.
            index = getattr(current_process(), "index", 0) or 0
            start_metrics_server(container.settings.worker_metrics_port + index, container.metrics)
        _WorkerState.container = container
    return _WorkerState.container


def serve_webhooks_only() -> None:
    """Make this process a webhooks worker: no detector, no metrics port (the inference workers' ports stay theirs)."""
    _WorkerState.runs_analyses = False


@signals.worker_process_init.connect
def _init_worker_process(**_: Any) -> None:
    # Each (forked) worker process builds its own engine, pools and detector: nothing crosses a fork.
    _WorkerState.container = None
    container = worker_container()
    container.detector  # noqa: B018 - load the model now, not on the first task
    if _WorkerState.runs_analyses:  # this (the task) thread runs the backlog, below the prompt lane's priority
        s = container.settings
        container.fair_dispatcher.start_prompt_lane(
            backlog_nice=s.worker_backlog_nice, poll_seconds=s.worker_prompt_poll_seconds,
            limit_seconds=_soft(s.task_time_limit_seconds))  # the lane takes one-turn analyses: pictures


@signals.worker_shutdown.connect
def _stop_prompt_lane(**_: Any) -> None:
    # A solo pool's tasks run in the worker's own process (no worker_process_shutdown): let the lane's item end.
    if _WorkerState.container is not None and _WorkerState.runs_analyses:
        _WorkerState.container.fair_dispatcher.stop_prompt_lane(_WorkerState.container.settings.grace_seconds)


@signals.worker_process_shutdown.connect
def _close_worker_process(**_: Any) -> None:
    if _WorkerState.container is not None:
        _WorkerState.container.fair_dispatcher.stop_prompt_lane(_WorkerState.container.settings.grace_seconds)
        _WorkerState.container.close()
        _WorkerState.container = None


def celery_app_for_worker() -> Celery:
    """The app `celery -A` / `pixelcheck worker` runs: tasks included, and a broker connection lost with
    messages in flight does not stop the worker (see pixelcheck.broker_qos)."""
    from pixelcheck.broker_qos import use_connection_loss_safe_qos

    use_connection_loss_safe_qos()
    return make_celery(Settings.from_env(), include_tasks=True)
