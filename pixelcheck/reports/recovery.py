"""Reports a lost task left behind: a build task dropped by Redis (a restart without persistence) or taken
down with its worker leaves its report REQUESTED or GENERATING with nothing to build it. The reconciler asks
for them every pass and sends each a build task again; the build itself gives up after MAX_BUILD_ATTEMPTS."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.analysis.models import Analysis
from pixelcheck.db import unit_of_work, utcnow
from pixelcheck.reports.models import Report
from pixelcheck.reports.service import ReportState

_MAP_UNDER_WAY = ("PENDING", "RUNNING")  # an automatic report's build is sent when its region map is done


class ReportRecovery:
    def __init__(self, *, sessions: sessionmaker[Session], enqueue_build: Callable[[str], None],
                 requested_after: timedelta, generating_after: timedelta) -> None:
        self._sessions = sessions
        self._enqueue_build = enqueue_build
        self._requested_after = requested_after  # the stale period
        self._generating_after = generating_after  # no shorter than a build may run (the task time limit)

    def recover_stale(self, limit: int = 500) -> int:
        """Send a build again for reports REQUESTED for the stale period, or GENERATING for longer than a build
        may run, except automatic ones whose region map is still being made (the map's own recovery sends
        those). Returns how many were sent."""
        now = utcnow()
        waiting_for_map = exists().where(Analysis.report_id == Report.id,
                                         Analysis.region_map_state.in_(_MAP_UNDER_WAY))
        lost = or_(and_(Report.state == ReportState.REQUESTED, Report.update_time < now - self._requested_after),
                   and_(Report.state == ReportState.GENERATING, Report.update_time < now - self._generating_after))
        with unit_of_work(self._sessions) as session:
            ids = list(session.scalars(select(Report.id).where(lost, ~waiting_for_map)
                                       .order_by(Report.update_time).limit(limit)))
            if ids:  # touched, so the next pass does not send them again at once
                session.execute(update(Report).where(Report.id.in_(ids)).values(update_time=utcnow())
                                .execution_options(synchronize_session=False))
        for report_id in ids:
            self._enqueue_build(report_id)
        return len(ids)
