"""A worker's side of the fair queue: take the next item and run it; afterwards (fill_idle) an otherwise idle
worker makes one unrequested region map."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pixelcheck.errors import Unavailable
from pixelcheck.scheduling.fair_queue import ANALYSIS, FairQueue, WorkItem

log = logging.getLogger("pixelcheck.scheduling.dispatch")


class FairDispatcher:
    """Runs fair-queue items: analyses and the region maps reports wait for."""

    def __init__(self, queue: FairQueue, *, analyse: Callable[[str], str], map_regions: Callable[[str], str],
                 when_idle: Callable[[], object], observe_wait: Callable[[str, float], None]) -> None:
        self._queue = queue
        self._analyse = analyse
        self._map = map_regions
        self._when_idle = when_idle
        self._observe_wait = observe_wait

    def run_next(self) -> str:
        """Run the item whose turn it is. Returns the run's outcome ("succeeded", "ready", "skipped" ...) or
        "empty" when nothing waits. Raises Unavailable/ConnectionError after putting the item back, so the
        task's retry runs it later."""
        item = self._queue.pop()
        if item is None:
            return "empty"
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
