"""A worker's side of the fair queue: take the next item and run it; afterwards (fill_idle) an otherwise idle
worker makes one unrequested region map. With a prompt lane (prompt_lane.py), light items and requested maps
run on the lane at the normal CPU priority, the rest on the task thread at a lower one."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import TypeVar, cast

from pixelcheck.errors import Unavailable
from pixelcheck.scheduling.fair_queue import ANALYSIS, FairQueue, WorkItem
from pixelcheck.scheduling.prompt_lane import NOT_TAKEN, PromptLane, Work, can_lower_threads, lower_this_thread

T = TypeVar("T")
LANE_BACKOFF_SECONDS = 2.0  # after the database or Redis failed a light item, the lane looks again this much later

log = logging.getLogger("pixelcheck.scheduling.dispatch")


class FairDispatcher:
    """Runs fair-queue items: analyses and the region maps reports wait for."""

    def __init__(self, queue: FairQueue, *, analyse: Callable[[str], str], map_regions: Callable[[str], str],
                 when_idle: Callable[[], object], observe_wait: Callable[[str, float], None],
                 flush_audit: Callable[[], object] = lambda: None, nudge: Callable[[], object] = lambda: None) -> None:
        self._queue = queue
        self._analyse = analyse
        self._map = map_regions
        self._when_idle = when_idle
        self._observe_wait = observe_wait
        self._flush_audit = flush_audit  # after an item the lane ran (a task flushes after its own)
        self._nudge = nudge  # one more token, for an item the lane put back (a task's retry sends its own)
        self._lane: PromptLane | None = None
        self._lane_resumes_at = 0.0  # monotonic

    def start_prompt_lane(self, *, backlog_nice: int, poll_seconds: float, limit_seconds: float) -> bool:
        """Start the prompt lane, then lower the calling (task) thread's CPU priority by `backlog_nice`. Call on
        the thread that runs the tasks, once. False where threads have no priority of their own."""
        if self._lane is not None or backlog_nice <= 0 or not can_lower_threads():
            return False
        self._lane = PromptLane(self._found_light, poll_seconds=poll_seconds, limit_seconds=limit_seconds)
        lower_this_thread(backlog_nice)
        return True

    def stop_prompt_lane(self, timeout: float) -> None:
        """Stop looking for light items; wait up to `timeout` for the lane's running one."""
        if self._lane is not None:
            self._lane.close(timeout)

    def promptly(self, work: Callable[[], T]) -> T:
        """Run work somebody waits for (a requested region map) on the prompt lane when it is free, else here."""
        if self._lane is not None:
            outcome = self._lane.run(work)
            if outcome is not NOT_TAKEN:
                return cast(T, outcome)
        return work()

    def run_next(self) -> str:
        """Run the item whose turn it is. Returns the run's outcome ("succeeded", "ready", "skipped" ...) or
        "empty" when nothing waits. Raises Unavailable/ConnectionError after putting the item back, so the
        task's retry runs it later. A light one-turn item is started on the prompt lane when it is free, and
        this thread takes the next turn; while this thread runs an item, the lane starts light items that
        arrive."""
        item = self._queue.pop()
        if item is None:
            return "empty"
        # A clip's minutes stay on this thread, under Celery's own time limits.
        if item.light and item.cost == 1 and self._lane is not None and self._lane.start(self._lane_work(item)):
            item = self._queue.pop(pay_token=True)  # a second item for this task's one token
            if item is None:
                return "prompt"
        with self._lane.watching() if self._lane is not None else nullcontext():
            return self._run(item)

    def _found_light(self) -> Work | None:
        """The prompt lane's look: a light item, as work that runs it."""
        if time.monotonic() < self._lane_resumes_at:
            return None
        item = self._queue.pop_light()
        return None if item is None else self._lane_work(item)

    def _lane_work(self, item: WorkItem) -> Work:
        """Work that runs `item` on the lane, writes its audit events and looks for idle-time work (there is no
        task to do either)."""

        def work() -> object:
            try:
                return self._run(item)
            except (Unavailable, ConnectionError):  # back in its place: a token makes sure a worker runs it
                log.info("light item %s put back: the database or Redis is unavailable", item.image_id)
                self._lane_resumes_at = time.monotonic() + LANE_BACKOFF_SECONDS
                try:
                    self._nudge()
                except Exception:  # the broker is down too: the reconciler queues it again once it is back
                    log.warning("could not send a token for %s", item.image_id, exc_info=True)
                return "requeued"
            finally:
                self._flush_audit()
                self.fill_idle()  # as a task does after its item: the map of a picture just analysed, say

        return work

    def _run(self, item: WorkItem) -> str:
        self._observe_wait(item.principal_class, item.waited_seconds)
        run = self._analyse if item.kind == ANALYSIS else self._map
        try:
            outcome = run(item.image_id)
        except (Unavailable, ConnectionError):
            self._queue.requeue(item)
            raise
        except BaseException:
            self._finished(item)
            raise
        self._finished(item)
        return outcome

    def _finished(self, item: WorkItem) -> None:
        try:
            self._queue.done(item)
        except Exception:  # the run is done either way; its running mark expires by itself
            log.warning("could not clear the running mark of %s", item.image_id, exc_info=True)

    def fill_idle(self) -> None:
        """When nothing else waits, queue one unrequested region map (never fails the caller)."""
        try:
            self._when_idle()
        except Exception:
            log.warning("could not look for an idle-time region map", exc_info=True)
