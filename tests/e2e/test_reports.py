"""Reports through real stubs, a real Celery worker and Redis: automatic and requested reports, single and
batch, PDF and CSV, permissions, downloads before READY and after an image was deleted."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
import pytest
from pixelcheck.v1 import (
    auth_pb2,
    common_pb2,
    ingestion_pb2,
    ingestion_pb2_grpc,
    reports_pb2,
    reports_pb2_grpc,
    results_pb2,
    results_pb2_grpc,
)

from pixelcheck.db import unit_of_work
from tests import images
from tests.e2e.flows import SignedInUser, fails, new_admin, new_user, sign_in
from tests.e2e.uploads import state_name, upload, watch
from tests.pdf_reading import pdf_text
from tests.processes import WorkerProcess

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

PDF = common_pb2.REPORT_FORMAT_PDF
CSV = common_pb2.REPORT_FORMAT_CSV


# -- steps ------------------------------------------------------------------------------------------
def reports_stub(server: LiveServer) -> reports_pb2_grpc.ReportsServiceStub:
    return reports_pb2_grpc.ReportsServiceStub(server.channel)


async def new_professional(server: LiveServer, admin: SignedInUser) -> SignedInUser:
    """A new user granted PROFESSIONAL by an admin, signed in again so the token carries the role."""
    user = await new_user(server.auth, "pro")
    await server.auth.SetUserRoles(auth_pb2.SetUserRolesRequest(
        user_id=user.user.id, roles=[common_pb2.ROLE_USER, common_pb2.ROLE_PROFESSIONAL]),
        metadata=admin.metadata)
    signed_in = await sign_in(server.auth, user.username)
    return SignedInUser(user.username, user.password, signed_in.user, signed_in.access_token,
                        signed_in.refresh_token)


async def analysed_image(server: LiveServer, user: SignedInUser, filename: str, seed: int
                         ) -> results_pb2.AnalysisResult:
    """Upload an image and wait for its analysis to succeed; its result."""
    data = images.png(320, 240, seed=seed) if filename.endswith(".png") else images.jpeg(320, 240, seed=seed)
    image = (await upload(server.channel, user.metadata, data, filename)).image
    events = await watch(server.channel, user.metadata, image.id)
    assert state_name(events[-1].state) == "SUCCEEDED", events[-1]
    return events[-1].result


async def ready_report(server: LiveServer, user: SignedInUser, report_id: str,
                       timeout: float = 60) -> reports_pb2.Report:
    """Poll GetReport until the worker has finished the report (READY or FAILED)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        report = (await reports_stub(server).GetReport(reports_pb2.GetReportRequest(report_id=report_id),
                                                       metadata=user.metadata)).report
        if report.state in (common_pb2.REPORT_STATE_READY, common_pb2.REPORT_STATE_FAILED):
            return report
        assert asyncio.get_running_loop().time() < deadline, f"report {report_id} still {report.state}"
        await asyncio.sleep(0.2)


@dataclass
class Download:
    header: reports_pb2.ReportFileHeader
    data: bytes
    chunk_sizes: list[int]


async def download(server: LiveServer, user: SignedInUser, report_id: str) -> Download:
    """Every message of DownloadReport: the header first, then the chunks."""
    call = reports_stub(server).DownloadReport(reports_pb2.DownloadReportRequest(report_id=report_id),
                                                metadata=user.metadata)
    messages = [m async for m in call]
    assert messages and messages[0].WhichOneof("payload") == "header"
    assert all(m.WhichOneof("payload") == "chunk" for m in messages[1:])
    chunks = [m.chunk for m in messages[1:]]
    return Download(messages[0].header, b"".join(chunks), [len(c) for c in chunks])


def verdict_words(result: results_pb2.AnalysisResult) -> str:
    return "Likely AI-generated" if result.label == common_pb2.LABEL_AI else "Likely a real photograph"


# -- automatic and requested reports ----------------------------------------------------------------
async def test_professional_gets_an_automatic_pdf_naming_verdict_confidence_and_model(
        live_server: LiveServer, worker: WorkerProcess) -> None:
    admin = await new_admin(live_server)
    pro = await new_professional(live_server, admin)
    result = await analysed_image(live_server, pro, "harbour.jpg", seed=31)
    assert result.report_id

    report = await ready_report(live_server, pro, result.report_id)
    assert report.state == common_pb2.REPORT_STATE_READY, report.failure_reason
    assert (report.scope, report.format, list(report.image_ids)) == (
        common_pb2.REPORT_SCOPE_SINGLE, PDF, [result.image_id])
    got = await download(live_server, pro, report.id)
    assert (got.header.filename, got.header.content_type) == ("analysis-of-harbour-jpg.pdf", "application/pdf")
    assert got.header.size_bytes == len(got.data) == report.size_bytes
    assert got.header.sha256 == hashlib.sha256(got.data).hexdigest() == report.sha256
    assert all(size <= 256 * 1024 for size in got.chunk_sizes)
    text = pdf_text(got.data)
    assert verdict_words(result) in text
    assert f"{round(result.confidence * 100)}%" in text and result.model_version in text


async def test_plain_users_get_no_automatic_report(live_server: LiveServer, worker: WorkerProcess) -> None:
    user = await new_user(live_server.auth)
    result = await analysed_image(live_server, user, "street.jpg", seed=32)
    assert result.report_id == ""


async def test_requested_single_pdf_report_is_built_by_the_worker(live_server: LiveServer,
                                                                  worker: WorkerProcess) -> None:
    admin = await new_admin(live_server)
    pro = await new_professional(live_server, admin)
    result = await analysed_image(live_server, pro, "pier.png", seed=33)

    created = (await reports_stub(live_server).CreateReport(reports_pb2.CreateReportRequest(
        image_ids=[result.image_id], format=PDF, title="Pier check"), metadata=pro.metadata)).report
    assert (created.state, created.scope) == (common_pb2.REPORT_STATE_REQUESTED, common_pb2.REPORT_SCOPE_SINGLE)

    report = await ready_report(live_server, pro, created.id)
    assert report.state == common_pb2.REPORT_STATE_READY and report.filename == "pier-check.pdf"
    text = pdf_text((await download(live_server, pro, report.id)).data)
    assert "Pier check" in text and verdict_words(result) in text and result.model_version in text


async def test_batch_csv_parses_back_to_the_analysis_results(live_server: LiveServer,
                                                             worker: WorkerProcess) -> None:
    admin = await new_admin(live_server)
    pro = await new_professional(live_server, admin)
    results = [await analysed_image(live_server, pro, f"frame-{n}.jpg", seed=40 + n) for n in range(3)]

    created = (await reports_stub(live_server).CreateReport(reports_pb2.CreateReportRequest(
        image_ids=[r.image_id for r in results], format=CSV, title="=Batch, \"desk\""),
        metadata=pro.metadata)).report
    assert created.scope == common_pb2.REPORT_SCOPE_BATCH

    report = await ready_report(live_server, pro, created.id)
    assert report.state == common_pb2.REPORT_STATE_READY, report.failure_reason
    got = await download(live_server, pro, report.id)
    assert got.header.content_type == "text/csv" and got.header.filename == "batch-desk.csv"
    rows = list(csv.DictReader(io.StringIO(got.data.decode("utf-8"), newline="")))
    assert [(row["image_id"], row["filename"], row["label"], row["confidence"], row["prob_ai"],
             row["model_version"], row["state"]) for row in rows] == [
        (r.image_id, f"frame-{n}.jpg", common_pb2.Label.Name(r.label).removeprefix("LABEL_"),
         f"{r.confidence:.4f}", f"{r.prob_ai:.4f}", r.model_version, "SUCCEEDED")
        for n, r in enumerate(results)]


async def test_batch_pdf_report_is_built(live_server: LiveServer, worker: WorkerProcess) -> None:
    admin = await new_admin(live_server)
    pro = await new_professional(live_server, admin)
    ids = [(await analysed_image(live_server, pro, f"shot-{n}.png", seed=50 + n)).image_id for n in range(2)]
    created = (await reports_stub(live_server).CreateReport(reports_pb2.CreateReportRequest(
        image_ids=ids, format=PDF), metadata=pro.metadata)).report
    assert created.title == "Analysis of 2 images"
    report = await ready_report(live_server, pro, created.id)
    assert report.state == common_pb2.REPORT_STATE_READY, report.failure_reason
    assert (await download(live_server, pro, report.id)).data.startswith(b"%PDF")


# -- permissions and visibility ---------------------------------------------------------------------
async def test_plain_users_may_not_create_reports(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    failure = await fails(reports_stub(live_server).CreateReport(reports_pb2.CreateReportRequest(
        image_ids=["0" * 32], format=PDF), metadata=user.metadata))
    assert (failure.code, failure.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")


async def test_invalid_create_requests_name_every_bad_field(live_server: LiveServer) -> None:
    pro = await new_professional(live_server, await new_admin(live_server))
    failure = await fails(reports_stub(live_server).CreateReport(reports_pb2.CreateReportRequest(
        image_ids=[], format=common_pb2.REPORT_FORMAT_UNSPECIFIED, title="x" * 201), metadata=pro.metadata))
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert set(failure.field_violations) == {"image_ids", "format", "title"}


async def test_images_and_reports_of_others_are_not_found(live_server: LiveServer,
                                                          worker: WorkerProcess) -> None:
    admin = await new_admin(live_server)
    pro, stranger = await new_professional(live_server, admin), await new_professional(live_server, admin)
    owner = await new_user(live_server.auth)
    theirs = (await upload(live_server.channel, owner.metadata, images.jpeg(seed=60), "theirs.jpg")).image.id
    mine = await analysed_image(live_server, pro, "mine.jpg", seed=61)
    stub = reports_stub(live_server)

    failure = await fails(stub.CreateReport(reports_pb2.CreateReportRequest(
        image_ids=[mine.image_id, theirs], format=CSV), metadata=pro.metadata))
    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "IMAGE_NOT_FOUND")
    assert theirs in failure.message and failure.info.metadata["image_id"] == theirs

    report_id = mine.report_id
    for call in (stub.GetReport(reports_pb2.GetReportRequest(report_id=report_id), metadata=stranger.metadata),
                 _drain(stub.DownloadReport(reports_pb2.DownloadReportRequest(report_id=report_id),
                                            metadata=stranger.metadata))):
        failure = await fails(call)
        assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "REPORT_NOT_FOUND")
    listed = await stub.ListReports(reports_pb2.ListReportsRequest(), metadata=stranger.metadata)
    assert list(listed.reports) == []

    admin_view = await stub.GetReport(reports_pb2.GetReportRequest(report_id=report_id),
                                      metadata=admin.metadata)
    assert admin_view.report.owner_id == pro.user.id
    admin_report = await stub.CreateReport(reports_pb2.CreateReportRequest(image_ids=[theirs], format=CSV),
                                           metadata=admin.metadata)
    assert admin_report.report.owner_id == admin.user.id


async def _drain(call: object) -> list[object]:
    return [m async for m in call]  # type: ignore[attr-defined]


# -- downloads --------------------------------------------------------------------------------------
async def test_download_before_the_report_is_ready_is_a_failed_precondition(
        live_server: LiveServer, worker: WorkerProcess) -> None:
    pro = await new_professional(live_server, await new_admin(live_server))
    image_id = (await upload(live_server.channel, pro.metadata, images.jpeg(seed=70), "early.jpg")).image.id
    # A report no worker has been asked to build yet: requested state, deterministically.
    with unit_of_work(live_server.container.sessions) as session:
        report_id = live_server.container.reports.add_automatic_report(
            session, owner_id=pro.user.id, image_id=image_id)
    assert report_id is not None

    failure = await fails(_drain(reports_stub(live_server).DownloadReport(
        reports_pb2.DownloadReportRequest(report_id=report_id), metadata=pro.metadata)))
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REPORT_NOT_READY")

    live_server.container.queue.build_report(report_id)
    assert (await ready_report(live_server, pro, report_id)).state == common_pb2.REPORT_STATE_READY


async def test_a_report_still_downloads_after_its_image_is_deleted(live_server: LiveServer,
                                                                   worker: WorkerProcess) -> None:
    pro = await new_professional(live_server, await new_admin(live_server))
    result = await analysed_image(live_server, pro, "gone.jpg", seed=80)
    report = await ready_report(live_server, pro, result.report_id)
    before = await download(live_server, pro, report.id)

    await ingestion_pb2_grpc.IngestionServiceStub(live_server.channel).DeleteImage(
        ingestion_pb2.DeleteImageRequest(image_id=result.image_id), metadata=pro.metadata)

    after = await download(live_server, pro, report.id)
    assert after.data == before.data and after.header == before.header
    got = await reports_stub(live_server).GetReport(reports_pb2.GetReportRequest(report_id=report.id),
                                                    metadata=pro.metadata)
    assert list(got.report.deleted_image_ids) == [result.image_id]
    failure = await fails(results_pb2_grpc.ResultsServiceStub(live_server.channel).GetResult(
        results_pb2.GetResultRequest(image_id=result.image_id), metadata=pro.metadata))
    assert failure.code == grpc.StatusCode.NOT_FOUND


async def test_list_reports_pages_newest_first(live_server: LiveServer, worker: WorkerProcess) -> None:
    pro = await new_professional(live_server, await new_admin(live_server))
    image_id = (await upload(live_server.channel, pro.metadata, images.jpeg(seed=90), "list.jpg")).image.id
    stub = reports_stub(live_server)
    made = [(await stub.CreateReport(reports_pb2.CreateReportRequest(image_ids=[image_id], format=CSV,
                                                                     title=f"R{n}"), metadata=pro.metadata)).report.id
            for n in range(3)]

    listed, token, pages = [], "", 0
    while pages == 0 or token:  # the automatic report of the upload is listed too
        page = await stub.ListReports(reports_pb2.ListReportsRequest(page_size=2, page_token=token),
                                      metadata=pro.metadata)
        assert len(page.reports) <= 2
        listed += [r.id for r in page.reports]
        token, pages = page.next_page_token, pages + 1
    assert [i for i in listed if i in made] == list(reversed(made)) and pages >= 2
    failure = await fails(stub.ListReports(reports_pb2.ListReportsRequest(page_size=-1), metadata=pro.metadata))
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_SIZE")
