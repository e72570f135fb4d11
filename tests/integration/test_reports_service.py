"""Report use cases on a real database: validation, visibility, the automatic-report hook, building."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from PIL import Image as PILImage
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.analysis.detector.verdict import (
    Band,
    ImageFacts,
    Label,
    ModelInfo,
    Provenance,
    Signal,
    Verdict,
)
from pixelcheck.analysis.models import Analysis
from pixelcheck.analysis.records import store_verdict
from pixelcheck.blobs import SqlBlobStore
from pixelcheck.db import new_id, unit_of_work
from pixelcheck.errors import FailedPrecondition, Forbidden, InvalidInput, NotFound, Unavailable
from pixelcheck.iam.models import User, UserRole
from pixelcheck.iam.principal import ADMIN, PROFESSIONAL, SERVICE, USER, Principal
from pixelcheck.ingestion.models import Image
from pixelcheck.paging import token_key
from pixelcheck.reports import service
from pixelcheck.reports.models import Report, ReportImage
from pixelcheck.reports.service import Reports
from tests.pdf_reading import pdf_text

MODEL_VERSION = "7.4.2-test"


# -- fixtures ---------------------------------------------------------------------------------------
@dataclass
class RecordingAudit:
    events: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)

    def record(self, action: str, *, actor_id: str = "", target: str = "",
               payload: dict[str, Any] | None = None) -> None:
        self.events.append((action, actor_id, target, dict(payload or {})))


@dataclass
class World:
    """The reports use cases over a migrated database, with the queue and audit ports recorded."""

    sessions: sessionmaker[Session]
    reports: Reports
    audit: RecordingAudit
    enqueued: list[str]
    committed_when_enqueued: list[bool]
    make_reports: Callable[..., Reports]


@pytest.fixture
def world(sessions: sessionmaker[Session]) -> World:
    audit = RecordingAudit()
    enqueued: list[str] = []
    committed: list[bool] = []

    def enqueue(report_id: str) -> None:
        # Read in a fresh session: the build must be enqueued only once the report is committed.
        with sessions() as other:
            committed.append(other.get(Report, report_id) is not None)
        enqueued.append(report_id)

    def make_reports(**overrides: Any) -> Reports:
        options: dict[str, Any] = dict(
            sessions=sessions, read_sessions=sessions, blobs=SqlBlobStore(sessions), enqueue_build=enqueue,
            model_info=model_info, audit=audit, page_token_key=token_key("test-secret", "reports"))
        return Reports(**{**options, **overrides})

    return World(sessions, make_reports(), audit, enqueued, committed, make_reports)


def model_info() -> ModelInfo:
    return ModelInfo(name="PixelCheck test detector", version=MODEL_VERSION, weights_sha256="ab" * 32,
                     threshold=0.5, input_description="RGB 224x224", training_data="test data",
                     metrics={"auroc": 0.95})


def verdict(label: Label = Label.AI, confidence: float = 0.9375) -> Verdict:
    prob_ai = confidence if label is Label.AI else 1 - confidence
    return Verdict(label=label, prob_ai=prob_ai, confidence=confidence, band=Band.HIGH,
                   model_version=MODEL_VERSION,
                   signals=(Signal("Pixel model", prob_ai, 0.7, "Texture statistics."),
                            Signal("Camera data", 0.6, 0.3, "No camera make or model.")),
                   provenance=Provenance(), image_facts=ImageFacts("PNG", 64, 48, 1000),
                   summary="The pixels point to an image generator.")


def png_bytes(image_id: str) -> bytes:
    """A small PNG whose first pixels spell image_id, so every image has bytes of its own."""
    picture = PILImage.new("RGB", (64, 48), (40, 80, 160))
    for x, value in enumerate(bytes.fromhex(image_id)):
        picture.putpixel((x, 0), (value, value, value))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def add_user(world: World, *roles: str, display_name: str = "Ada Lovelace") -> Principal:
    user_id = new_id()
    with unit_of_work(world.sessions) as session:
        session.add(User(id=user_id, username=f"u{user_id[:12]}", email=f"{user_id}@example.test",
                         display_name=display_name, is_service=SERVICE in roles,
                         roles=[UserRole(role_name=r) for r in roles]))
    return Principal(user_id=user_id, roles=frozenset(roles))


def add_image(world: World, owner: Principal, filename: str = "harbour.png", *,
              analysed: Verdict | None = None) -> str:
    """An uploaded image with its bytes and, when analysed is given, a SUCCEEDED analysis."""
    image_id = new_id()
    data = png_bytes(image_id)
    with unit_of_work(world.sessions) as session:
        session.add(Image(id=image_id, owner_id=owner.user_id, filename=filename, content_type="image/png",
                          size_bytes=len(data), width=64, height=48, sha256=hashlib.sha256(data).hexdigest()))
        session.flush()
        SqlBlobStore().put(session, f"image/{image_id}", data)
        row = Analysis(image_id=image_id, owner_id=owner.user_id, filename=filename, state="QUEUED")
        if analysed is not None:
            row.state, row.stage, row.progress = "SUCCEEDED", "DONE", 1.0
            row.finish_time, row.duration_ms = datetime(2025, 11, 26, 10, 30, tzinfo=UTC), 412
            store_verdict(row, analysed)
        session.add(row)
    return image_id


def delete_image(world: World, image_id: str) -> None:
    with unit_of_work(world.sessions) as session:
        session.execute(delete(Image).where(Image.id == image_id))
        SqlBlobStore().delete(session, f"image/{image_id}")


def download(world: World, principal: Principal, report_id: str) -> bytes:
    header, reader = world.reports.open_download(principal, report_id)
    data = reader.read_all()
    assert header.size_bytes == len(data) and header.sha256 == hashlib.sha256(data).hexdigest()
    return data


def download_text(world: World, principal: Principal, report_id: str) -> str:
    return download(world, principal, report_id).decode("utf-8")


def error_of(excinfo: pytest.ExceptionInfo[Any]) -> tuple[str, set[str]]:
    return excinfo.value.reason, {name for name, _ in excinfo.value.violations}


# -- requesting -------------------------------------------------------------------------------------
def test_one_image_makes_a_single_report_enqueued_after_its_commit(world: World) -> None:
    pro = add_user(world, USER, PROFESSIONAL)
    image_id = add_image(world, pro, "harbour.png", analysed=verdict())

    report = world.reports.create_report(pro, image_ids=[image_id], format="PDF", title="")

    assert (report.scope, report.state, report.format) == ("SINGLE", "REQUESTED", "PDF")
    assert report.image_ids == (image_id,) and report.owner_id == pro.user_id
    assert report.title == "Analysis of harbour.png" and report.filename == "analysis-of-harbour-png.pdf"
    assert world.enqueued == [report.id] and world.committed_when_enqueued == [True]


def test_a_report_that_cannot_be_queued_is_unavailable_and_leaves_nothing_stored(world: World) -> None:
    pro = add_user(world, USER, PROFESSIONAL)
    image_id = add_image(world, pro, "harbour.png", analysed=verdict())

    def broker_down(report_id: str) -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    reports = world.make_reports(enqueue_build=broker_down)
    with pytest.raises(Unavailable) as refused:
        reports.create_report(pro, image_ids=[image_id], format="PDF", title="Quarterly")
    assert refused.value.reason == "BROKER_UNAVAILABLE" and refused.value.retry_after_seconds
    with world.sessions() as session:  # no report left REQUESTED that no worker will ever build
        assert session.scalar(select(Report.id).where(Report.owner_id == pro.user_id)) is None
        assert session.scalar(select(ReportImage.report_id).where(ReportImage.image_id == image_id)) is None


def test_several_images_make_a_batch_report_in_the_requested_order(world: World) -> None:
    pro = add_user(world, PROFESSIONAL)
    ids = [add_image(world, pro, f"img{n}.png") for n in range(3)]

    report = world.reports.create_report(pro, image_ids=list(reversed(ids)), format="CSV", title="Batch")

    assert report.scope == "BATCH" and report.image_ids == tuple(reversed(ids))


@pytest.mark.parametrize(("image_ids", "format", "title", "fields"), [
    ([], "PDF", "", {"image_ids"}),
    (["0" * 32] * 2, "PDF", "", {"image_ids"}),
    (["NOT-AN-ID"], "PDF", "", {"image_ids[0]"}),
    (["0" * 32], "UNSPECIFIED", "", {"format"}),
    (["0" * 32], "PDF", "t" * 201, {"title"}),
    ([], "UNSPECIFIED", "t" * 201, {"image_ids", "format", "title"}),
])
def test_invalid_requests_list_every_bad_field(world: World, image_ids: list[str], format: str,
                                               title: str, fields: set[str]) -> None:
    pro = add_user(world, PROFESSIONAL)
    with pytest.raises(InvalidInput) as excinfo:
        world.reports.create_report(pro, image_ids=image_ids, format=format, title=title)
    assert error_of(excinfo) == ("INVALID_ARGUMENT", fields)
    assert world.enqueued == []


def test_more_images_than_the_limit_are_refused(world: World) -> None:
    pro = add_user(world, PROFESSIONAL)
    reports = world.make_reports(max_images=2)
    with pytest.raises(InvalidInput) as excinfo:
        reports.create_report(pro, image_ids=[new_id() for _ in range(3)], format="PDF", title="")
    assert error_of(excinfo) == ("INVALID_ARGUMENT", {"image_ids"})


def test_another_users_image_is_not_found_and_named(world: World) -> None:
    pro, other = add_user(world, PROFESSIONAL), add_user(world, PROFESSIONAL)
    mine, theirs = add_image(world, pro), add_image(world, other)
    with pytest.raises(NotFound) as excinfo:
        world.reports.create_report(pro, image_ids=[mine, theirs], format="PDF", title="")
    assert excinfo.value.reason == "IMAGE_NOT_FOUND" and excinfo.value.metadata == {"image_id": theirs}
    assert theirs in excinfo.value.message
    assert world.enqueued == []


def test_admin_may_report_on_any_users_images(world: World) -> None:
    admin, owner = add_user(world, ADMIN), add_user(world, USER)
    image_id = add_image(world, owner)
    report = world.reports.create_report(admin, image_ids=[image_id], format="PDF", title="Review")
    assert report.owner_id == admin.user_id


def test_plain_users_may_not_request_reports(world: World) -> None:
    user = add_user(world, USER)
    with pytest.raises(Forbidden) as excinfo:
        world.reports.create_report(user, image_ids=[add_image(world, user)], format="PDF", title="")
    assert excinfo.value.reason == "ROLE_REQUIRED"


# -- reading ----------------------------------------------------------------------------------------
def test_reports_are_visible_to_owner_admin_and_service_only(world: World) -> None:
    pro, stranger = add_user(world, PROFESSIONAL), add_user(world, PROFESSIONAL)
    admin, service = add_user(world, ADMIN), add_user(world, SERVICE)
    report = world.reports.create_report(pro, image_ids=[add_image(world, pro)], format="PDF", title="")

    for reader in (pro, admin, service):
        assert world.reports.get_report(reader, report.id).id == report.id
    for missing in (report.id, new_id()):
        with pytest.raises(NotFound) as excinfo:
            world.reports.get_report(stranger, missing)
        assert excinfo.value.reason == "REPORT_NOT_FOUND"
    with pytest.raises(InvalidInput) as malformed:
        world.reports.get_report(stranger, "../etc")
    assert malformed.value.reason == "INVALID_ID"
    with pytest.raises(NotFound):
        world.reports.open_download(stranger, report.id)


def test_list_pages_through_the_callers_reports_newest_first(world: World) -> None:
    pro, other = add_user(world, PROFESSIONAL), add_user(world, PROFESSIONAL)
    image_id = add_image(world, pro)
    made = [world.reports.create_report(pro, image_ids=[image_id], format="CSV", title=f"R{n}").id
            for n in range(3)]
    world.reports.create_report(other, image_ids=[add_image(world, other)], format="PDF", title="")

    first = world.reports.list_reports(pro, page_size_value=2, page_token="")
    second = world.reports.list_reports(pro, page_size_value=2, page_token=first.next_page_token)

    assert [r.id for r in first.reports + second.reports] == list(reversed(made))
    assert first.next_page_token and second.next_page_token == ""
    with pytest.raises(InvalidInput) as excinfo:
        world.reports.list_reports(other, page_size_value=2, page_token=first.next_page_token)
    assert excinfo.value.reason == "INVALID_PAGE_TOKEN"
    with pytest.raises(InvalidInput) as excinfo:
        world.reports.list_reports(pro, page_size_value=-1, page_token="")
    assert excinfo.value.reason == "INVALID_PAGE_SIZE"


def test_download_before_the_report_is_ready_is_a_failed_precondition(world: World) -> None:
    pro = add_user(world, PROFESSIONAL)
    report = world.reports.create_report(pro, image_ids=[add_image(world, pro)], format="PDF", title="")
    with pytest.raises(FailedPrecondition) as excinfo:
        world.reports.open_download(pro, report.id)
    assert excinfo.value.reason == "REPORT_NOT_READY"
    assert excinfo.value.metadata == {"report_id": report.id, "state": "REQUESTED"}


# -- the automatic-report hook ----------------------------------------------------------------------
@pytest.mark.parametrize(("roles", "gets_report"), [
    ((USER,), False), ((USER, PROFESSIONAL), True), ((ADMIN,), True), ((SERVICE,), False)])
def test_automatic_report_is_added_only_for_professionals_and_admins(
        world: World, roles: tuple[str, ...], gets_report: bool) -> None:
    owner = add_user(world, *roles)
    image_id = add_image(world, owner, "street.jpg")
    with unit_of_work(world.sessions) as session:
        report_id = world.reports.add_automatic_report(session, owner_id=owner.user_id, image_id=image_id)
    assert (report_id is not None) == gets_report
    if report_id is not None:
        with world.sessions() as session:
            row = session.get_one(Report, report_id)
            assert (row.scope, row.format, row.state, row.automatic) == ("SINGLE", "PDF", "REQUESTED", True)
            assert row.title == "Analysis of street.jpg" and [i.image_id for i in row.images] == [image_id]


def test_automatic_report_is_left_to_the_callers_transaction(world: World) -> None:
    owner = add_user(world, PROFESSIONAL)
    image_id = add_image(world, owner)
    with world.sessions() as session:
        report_id = world.reports.add_automatic_report(session, owner_id=owner.user_id, image_id=image_id)
        session.rollback()
    with world.sessions() as session:
        assert session.get(Report, report_id) is None


# -- building ---------------------------------------------------------------------------------------
def test_build_stores_a_csv_that_parses_back_to_the_stored_verdicts(world: World) -> None:
    pro = add_user(world, PROFESSIONAL)
    ai, real = add_image(world, pro, "a.png", analysed=verdict()), add_image(
        world, pro, "b.png", analysed=verdict(Label.REAL, 0.8125))
    pending = add_image(world, pro, "c.png")
    report = world.reports.create_report(pro, image_ids=[ai, real, pending], format="CSV", title="Desk")

    world.reports.build(report.id)

    ready = world.reports.get_report(pro, report.id)
    assert ready.state == "READY" and ready.ready_time is not None and ready.filename == "desk.csv"
    rows = list(csv.DictReader(io.StringIO(download_text(world, pro, report.id), newline="")))
    assert [(r["image_id"], r["label"], r["confidence"], r["model_version"], r["state"]) for r in rows] == [
        (ai, "AI", "0.9375", MODEL_VERSION, "SUCCEEDED"), (real, "REAL", "0.8125", MODEL_VERSION, "SUCCEEDED"),
        (pending, "", "", "", "QUEUED")]
    assert ready.size_bytes == len(download_text(world, pro, report.id).encode())
    assert world.audit.events == [("report.ready", pro.user_id, f"report:{report.id}",
                                   {"format": "CSV", "size_bytes": ready.size_bytes, "sha256": ready.sha256})]


def test_built_pdf_states_verdict_confidence_and_model_version(world: World) -> None:
    pro = add_user(world, PROFESSIONAL)
    image_id = add_image(world, pro, "harbour.png", analysed=verdict())
    report = world.reports.create_report(pro, image_ids=[image_id], format="PDF", title="")
    world.reports.build(report.id)

    header, reader = world.reports.open_download(pro, report.id)
    data = reader.read_all()
    assert header.content_type == "application/pdf" and data.startswith(b"%PDF")
    text = pdf_text(data)
    assert "Likely AI-generated" in text and "94% (high confidence)" in text and MODEL_VERSION in text


def test_build_is_idempotent_once_ready(world: World) -> None:
    pro = add_user(world, PROFESSIONAL)
    report = world.reports.create_report(pro, image_ids=[add_image(world, pro)], format="CSV", title="")
    world.reports.build(report.id)
    first = world.reports.get_report(pro, report.id)
    world.reports.build(report.id)
    assert world.reports.get_report(pro, report.id) == first and len(world.audit.events) == 1


def test_a_report_left_generating_by_a_dead_worker_is_built_again(world: World) -> None:
    pro = add_user(world, PROFESSIONAL)
    report = world.reports.create_report(pro, image_ids=[add_image(world, pro)], format="CSV", title="")
    with unit_of_work(world.sessions) as session:
        session.get_one(Report, report.id).state = "GENERATING"
    world.reports.build(report.id)
    assert world.reports.get_report(pro, report.id).state == "READY"


def test_an_image_deleted_before_the_build_is_listed_as_deleted(world: World) -> None:
    pro = add_user(world, PROFESSIONAL)
    kept, gone = add_image(world, pro, "kept.png", analysed=verdict()), add_image(world, pro, "gone.png")
    report = world.reports.create_report(pro, image_ids=[kept, gone], format="CSV", title="")
    delete_image(world, gone)

    world.reports.build(report.id)

    ready = world.reports.get_report(pro, report.id)
    assert ready.state == "READY" and ready.deleted_image_ids == (gone,)
    rows = list(csv.DictReader(io.StringIO(download_text(world, pro, report.id), newline="")))
    assert [(r["image_id"], r["filename"], r["state"]) for r in rows] == [
        (kept, "kept.png", "SUCCEEDED"), (gone, "gone.png", "DELETED")]


def test_a_ready_report_still_downloads_after_its_image_is_deleted(world: World) -> None:
    pro = add_user(world, PROFESSIONAL)
    image_id = add_image(world, pro, analysed=verdict())
    report = world.reports.create_report(pro, image_ids=[image_id], format="PDF", title="")
    world.reports.build(report.id)
    before = download(world, pro, report.id)

    delete_image(world, image_id)

    assert download(world, pro, report.id) == before
    assert world.reports.get_report(pro, report.id).deleted_image_ids == (image_id,)
    assert world.reports.list_reports(pro, page_size_value=0, page_token="").reports[0].deleted_image_ids == (
        image_id,)


def test_a_report_that_cannot_be_rendered_fails_with_a_readable_reason(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_renderer(document: Any) -> bytes:
        raise ValueError("layout overflow in table cell")

    monkeypatch.setitem(service._RENDERERS, "PDF", broken_renderer)
    pro = add_user(world, PROFESSIONAL)
    report = world.reports.create_report(pro, image_ids=[add_image(world, pro)], format="PDF", title="")

    world.reports.build(report.id)

    failed = world.reports.get_report(pro, report.id)
    assert failed.state == "FAILED" and "could not be rendered" in failed.failure_reason
    assert "overflow" not in failed.failure_reason  # internals stay in the log
    with pytest.raises(FailedPrecondition) as excinfo:
        world.reports.open_download(pro, report.id)
    assert excinfo.value.reason == "REPORT_NOT_READY"
    assert world.audit.events == []


def test_a_report_is_built_without_the_model_section_when_the_detector_cannot_load(world: World) -> None:
    def unloadable_detector() -> ModelInfo:
        raise RuntimeError("weights file unreadable")

    pro = add_user(world, PROFESSIONAL)
    reports = world.make_reports(model_info=unloadable_detector)
    report = reports.create_report(pro, image_ids=[add_image(world, pro, analysed=verdict())], format="PDF",
                                   title="")
    reports.build(report.id)
    assert reports.get_report(pro, report.id).state == "READY"
