"""Reports a lost build task left behind, on a real database: the reconciler sends their build again once
they have waited too long, and a report whose builds keep ending with their worker fails with a reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from pixelcheck.analysis.models import Analysis
from pixelcheck.db import unit_of_work, utcnow
from pixelcheck.iam.principal import PROFESSIONAL, USER
from pixelcheck.reports.models import Report
from pixelcheck.reports.recovery import ReportRecovery
from pixelcheck.reports.service import MAX_BUILD_ATTEMPTS
from tests.integration.test_reports_service import World, add_image, add_user, verdict, world  # noqa: F401

REQUESTED_AFTER, GENERATING_AFTER = timedelta(seconds=30), timedelta(seconds=120)


@pytest.fixture
def sent() -> list[str]:
    return []


@pytest.fixture
def recovery(world: World, sent: list[str]) -> ReportRecovery:  # noqa: F811 - the fixture imported above
    return ReportRecovery(sessions=world.sessions, enqueue_build=sent.append, requested_after=REQUESTED_AFTER,
                          generating_after=GENERATING_AFTER)


def requested_report(world: World) -> str:  # noqa: F811
    return requested_report_of_image(world)[0]


def requested_report_of_image(world: World) -> tuple[str, str]:  # noqa: F811
    """(report id, image id) of a SINGLE PDF report just requested."""
    pro = add_user(world, USER, PROFESSIONAL)
    image_id = add_image(world, pro, analysed=verdict())
    return world.reports.create_report(pro, image_ids=[image_id], format="PDF", title="").id, image_id


def set_report(world: World, report_id: str, *, waited: timedelta, **values: object) -> None:  # noqa: F811
    with unit_of_work(world.sessions) as session:
        session.execute(update(Report).where(Report.id == report_id)
                        .values(update_time=utcnow() - waited, **values))


def test_a_requested_report_whose_build_task_was_lost_is_sent_again_after_the_stale_period_once(
        world: World, recovery: ReportRecovery, sent: list[str]) -> None:  # noqa: F811
    report_id = requested_report(world)
    recovery.recover_stale()
    assert report_id not in sent  # just requested: its build task is on its way

    set_report(world, report_id, waited=REQUESTED_AFTER + timedelta(seconds=1))
    recovery.recover_stale()
    recovery.recover_stale()  # the next pass, at once: the report was touched, nothing is sent twice
    assert sent.count(report_id) == 1


def test_a_report_left_generating_by_a_dead_worker_is_sent_again_only_after_a_build_could_have_run(
        world: World, recovery: ReportRecovery, sent: list[str]) -> None:  # noqa: F811
    report_id = requested_report(world)
    set_report(world, report_id, waited=GENERATING_AFTER - timedelta(seconds=10), state="GENERATING")
    recovery.recover_stale()
    assert report_id not in sent  # may still be building

    set_report(world, report_id, waited=GENERATING_AFTER + timedelta(seconds=1), state="GENERATING")
    recovery.recover_stale()
    assert sent.count(report_id) == 1


def test_an_automatic_report_whose_region_map_is_being_made_is_left_to_the_map(
        world: World, recovery: ReportRecovery, sent: list[str]) -> None:  # noqa: F811
    report_id, image_id = requested_report_of_image(world)
    set_report(world, report_id, waited=REQUESTED_AFTER * 2, automatic=True)
    with unit_of_work(world.sessions) as session:
        session.execute(update(Analysis).where(Analysis.image_id == image_id)
                        .values(report_id=report_id, region_map_state="PENDING"))
    recovery.recover_stale()
    assert report_id not in sent  # the map's run sends the build once the map is done

    with unit_of_work(world.sessions) as session:
        session.execute(update(Analysis).where(Analysis.report_id == report_id).values(region_map_state="READY"))
    set_report(world, report_id, waited=REQUESTED_AFTER * 2)
    recovery.recover_stale()
    assert sent.count(report_id) == 1  # the map is done, but the build it sent was lost


def test_ready_and_failed_reports_are_never_sent_again(
        world: World, recovery: ReportRecovery, sent: list[str]) -> None:  # noqa: F811
    ready, failed = requested_report(world), requested_report(world)
    set_report(world, ready, waited=GENERATING_AFTER * 2, state="READY")
    set_report(world, failed, waited=GENERATING_AFTER * 2, state="FAILED")
    recovery.recover_stale()
    assert ready not in sent and failed not in sent


def test_a_report_whose_builds_ended_with_their_worker_every_time_fails_with_a_reason(world: World) -> None:  # noqa: F811
    report_id = requested_report(world)
    for _ in range(MAX_BUILD_ATTEMPTS):  # each build started and its worker died before it finished
        set_report(world, report_id, waited=timedelta(0), state="GENERATING")
        with unit_of_work(world.sessions) as session:
            session.execute(update(Report).where(Report.id == report_id)
                            .values(build_attempts=Report.build_attempts + 1))
    world.reports.build(report_id)
    with world.sessions() as session:
        report = session.get_one(Report, report_id)
        assert report.state == "FAILED" and f"{MAX_BUILD_ATTEMPTS} attempts" in report.failure_reason


def test_a_build_counts_its_attempt_and_a_report_built_on_a_later_attempt_is_ready(world: World) -> None:  # noqa: F811
    report_id = requested_report(world)
    set_report(world, report_id, waited=timedelta(0), state="GENERATING", build_attempts=MAX_BUILD_ATTEMPTS - 1)
    world.reports.build(report_id)
    with world.sessions() as session:
        report = session.get_one(Report, report_id)
        assert (report.state, report.build_attempts) == ("READY", MAX_BUILD_ATTEMPTS)

