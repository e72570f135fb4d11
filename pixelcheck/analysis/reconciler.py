"""The reconciler: finds the work a broker or a killed worker lost and queues it again (beat runs it every
max(5 s, stale period / 4) on some worker).

Work is lost in two ways:
- one analysis, region map or report at a time (a worker SIGKILLed mid-run, a message dropped): found once
  it has been unchanged for the stale period;
- everything queued at once, when Redis loses its data (a restart without persistence, a failover to an
  empty replica, a flush). The fair queue's "kept" marker is gone with it, and the next pass queues every
  QUEUED analysis again at once, instead of a stale period later behind everything accepted since.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pixelcheck.db import utcnow

if TYPE_CHECKING:
    from pixelcheck.analysis.pipeline import AnalysisPipeline
    from pixelcheck.analysis.region_maps import RegionMaps
    from pixelcheck.reports.recovery import ReportRecovery
    from pixelcheck.scheduling.dispatch import FairDispatcher
    from pixelcheck.worker import TaskQueue

log = logging.getLogger("pixelcheck.analysis.reconciler")


class Reconciler:
    def __init__(self, *, pipeline: AnalysisPipeline, region_maps: RegionMaps, reports: ReportRecovery,
                 queue: TaskQueue, dispatcher: FairDispatcher, page: int = 500, max_pages: int = 200) -> None:
        self._pipeline = pipeline
        self._maps = region_maps
        self._reports = reports
        self._queue = queue
        self._dispatcher = dispatcher
        self._page = page
        self._max_pages = max_pages  # a pass re-queues at most page * max_pages; the next pass goes on

    def run(self) -> int:
        """One pass: everything waiting again if Redis lost its data, then the stale analyses, needed region
        maps and reports; then an idle worker may make a map. Returns how many items were queued or deferred."""
        restored = 0 if self._queue.fair.kept() else self._restore()
        analyses = self._pipeline.stale_analyses(self._page)
        still_waiting = [not self._queue.reanalyze_image(image_id, owner_id, accepted, cost)
                         for image_id, owner_id, accepted, cost in analyses]
        if any(still_waiting):
            self._queue.nudge()
        maps = self._maps.recover_stale(self._page)
        reports = self._reports.recover_stale(self._page)
        if restored or analyses or maps or reports:
            log.info("re-enqueued %d analyses Redis lost and %d stale ones; %d stale region maps re-queued or "
                     "deferred; %d stale reports sent to build again", restored, len(analyses), maps, reports)
        self._dispatcher.fill_idle()
        return restored + len(analyses) + maps + reports

    def _restore(self) -> int:
        """Queue every QUEUED analysis again (a page at a time, oldest first, each in its first place in its
        owner's line, so ahead of what was accepted since the loss; the push skips those already waiting),
        then mark the fair queue kept. Those claimed meanwhile are skipped by their claim."""
        since, restored = utcnow(), 0
        for _ in range(self._max_pages):
            rows = self._pipeline.stale_analyses(self._page, cutoff=since, states=("QUEUED",))
            for image_id, owner_id, accepted, cost in rows:
                self._queue.reanalyze_image(image_id, owner_id, accepted, cost)
            restored += len(rows)
            if len(rows) < self._page:
                self._queue.fair.mark_kept()
                break
        return restored
