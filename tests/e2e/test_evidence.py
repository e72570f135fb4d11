"""Region maps and invisible watermarks through the real server, worker, CLI and automatic PDF."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import grpc
import pytest
from PIL import Image
from pixelcheck.v1 import common_pb2, results_pb2, results_pb2_grpc
from sqlalchemy import select

from pixelcheck.analysis.models import Analysis
from tests import images
from tests.e2e.flows import SignedInUser, fails, failure_of, new_admin, new_user
from tests.e2e.servers import LiveServer
from tests.e2e.test_cli_client import signed_in_cli
from tests.e2e.test_reports import download, new_professional, ready_report
from tests.e2e.uploads import state_name, upload, watch
from tests.pdf_reading import pdf_text
from tests.processes import WorkerProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")


def results(server: LiveServer) -> results_pb2_grpc.ResultsServiceStub:
    return results_pb2_grpc.ResultsServiceStub(server.channel)


async def analysed(server: LiveServer, user: SignedInUser, data: bytes, name: str) -> results_pb2.AnalysisResult:
    image = (await upload(server.channel, user.metadata, data, name)).image
    events = await watch(server.channel, user.metadata, image.id)
    assert state_name(events[-1].state) == "SUCCEEDED", events[-1]
    return events[-1].result


async def ready_map(server: LiveServer, user: SignedInUser, image_id: str, timeout: float = 90
                    ) -> results_pb2.AnalysisResult:
    """Poll GetResult until the region map has left PENDING."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = (await results(server).GetResult(results_pb2.GetResultRequest(image_id=image_id),
                                                  metadata=user.metadata)).result
        if result.region_map.state != results_pb2.REGION_MAP_STATE_PENDING:
            return result
        assert asyncio.get_running_loop().time() < deadline, f"region map of {image_id} still pending"
        await asyncio.sleep(0.2)


async def test_region_map_covers_the_image_and_its_png_is_served_to_the_owner_and_admins_only(
        live_server: LiveServer, worker: WorkerProcess) -> None:
    owner = await new_user(live_server.auth)
    verdict = await analysed(live_server, owner, images.jpeg(1024, 640, seed=5), "wide.jpg")
    assert verdict.region_map.state in (results_pb2.REGION_MAP_STATE_PENDING, results_pb2.REGION_MAP_STATE_READY)

    result = await ready_map(live_server, owner, verdict.image_id)
    grid = result.region_map
    assert grid.state == results_pb2.REGION_MAP_STATE_READY and grid.progress == 1.0
    assert (grid.rows, grid.columns) == (5, 8)  # 128-pixel regions at least, at most 8 a side
    assert len(grid.regions) == 40 and all(0.0 <= r.prob_ai <= 1.0 for r in grid.regions)
    area = sum((r.right - r.left) * (r.bottom - r.top) for r in grid.regions)
    assert area == 1024 * 640  # every pixel in exactly one region
    assert (result.label, result.prob_ai) == (verdict.label, verdict.prob_ai)  # evidence, not a second verdict

    picture = (await results(live_server).GetRegionMap(
        results_pb2.GetRegionMapRequest(image_id=verdict.image_id, max_side=512), metadata=owner.metadata))
    png = Image.open(io.BytesIO(picture.png))
    assert png.format == "PNG" and png.size == (picture.width, picture.height)
    assert picture.width == 512 and picture.height > 320  # the overlay, then the legend below it
    assert picture.region_map == grid

    admin = await new_admin(live_server)
    await results(live_server).GetRegionMap(results_pb2.GetRegionMapRequest(image_id=verdict.image_id),
                                            metadata=admin.metadata)
    stranger = await new_user(live_server.auth)
    failure = await fails(results(live_server).GetRegionMap(
        results_pb2.GetRegionMapRequest(image_id=verdict.image_id), metadata=stranger.metadata))
    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "IMAGE_NOT_FOUND")
    failure = await fails(results(live_server).GetRegionMap(
        results_pb2.GetRegionMapRequest(image_id=verdict.image_id, max_side=5000), metadata=owner.metadata))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and "max_side" in failure.field_violations


async def test_a_small_image_has_no_region_map_and_says_why(live_server: LiveServer, worker: WorkerProcess) -> None:
    user = await new_user(live_server.auth)
    result = await analysed(live_server, user, images.jpeg(200, 100, seed=8), "tiny.jpg")
    assert result.region_map.state == results_pb2.REGION_MAP_STATE_UNAVAILABLE
    assert "too small" in result.region_map.reason
    failure = await fails(results(live_server).GetRegionMap(
        results_pb2.GetRegionMapRequest(image_id=result.image_id), metadata=user.metadata))
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REGION_MAP_UNAVAILABLE")


async def test_region_map_is_not_ready_before_the_verdict(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)  # no worker in this test: the analysis stays QUEUED
    image = (await upload(live_server.channel, user.metadata, images.jpeg(seed=41), "queued.jpg")).image
    failure = await fails(results(live_server).GetRegionMap(
        results_pb2.GetRegionMapRequest(image_id=image.id), metadata=user.metadata))
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REGION_MAP_NOT_READY")
    assert failure.retry_delay_seconds


async def test_a_map_asked_for_after_a_burst_of_uploads_on_an_idle_service_is_made_at_once_not_by_the_reconciler(
        live_server: LiveServer, worker: WorkerProcess) -> None:
    # As a new user met it: a few uploads, the verdict of the last, then GetRegionMap retried as RetryInfo says.
    # The idle worker starts on the newest map as soon as the verdicts are done, so the request meets it half
    # made. Every answer until READY must say "not ready"; the map must not wait for the reconciler's stale
    # period (120 s by default), which is what a lost hand-back used to cost.
    user = await new_user(live_server.auth)
    image_ids = [(await upload(live_server.channel, user.metadata, images.jpeg(1280, 1024, seed=900 + i),
                               f"burst-{i}.jpg")).image.id for i in range(4)]
    for image_id in image_ids:
        assert state_name((await watch(live_server.channel, user.metadata, image_id, timeout=120))[-1].state) \
            == "SUCCEEDED"
    await idle_run_started(live_server, image_ids[-1])  # the owner asks while the idle run makes it
    request = results_pb2.GetRegionMapRequest(image_id=image_ids[-1])
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        try:
            picture = await results(live_server).GetRegionMap(request, metadata=user.metadata)
            break
        except grpc.aio.AioRpcError as error:
            failure = failure_of(error)
            assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REGION_MAP_NOT_READY")
            assert failure.retry_delay_seconds
            assert asyncio.get_running_loop().time() < deadline, f"the requested map stalled: {failure.message}"
            await asyncio.sleep(failure.retry_delay_seconds)
    assert picture.region_map.progress == 1.0 and picture.png.startswith(b"\x89PNG")


async def idle_run_started(server: LiveServer, image_id: str, timeout: float = 60) -> None:
    """Wait until an idle worker has claimed the image's map (RUNNING in the database, not yet READY)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        with server.container.read_sessions() as session:
            state = session.scalar(select(Analysis.region_map_state).where(Analysis.image_id == image_id))
        if state == "RUNNING":
            return
        assert state in ("DEFERRED", "PENDING"), f"the idle run was not seen making the map (it is {state})"
        assert asyncio.get_running_loop().time() < deadline, "no idle worker took the map up"
        await asyncio.sleep(0.005)


async def test_cli_result_map_saves_the_picture(live_server: LiveServer, worker: WorkerProcess,
                                               tmp_path: Path) -> None:
    cli, _, _ = await signed_in_cli(live_server, tmp_path, "mapcli")
    (tmp_path / "scene.png").write_bytes(images.png(640, 480, seed=13))
    uploaded = await cli("client", "upload", "scene.png", "--json")
    assert uploaded.code == 0, uploaded.stderr
    image_id = uploaded.json()[0]["upload"]["image"]["id"]  # type: ignore[index]
    run = await cli("client", "result", image_id, "--map", "map.png", "--map-side", "400")
    assert run.code == 0, run.stderr
    assert "Region map  READY, 3x5 regions" in run.stdout and "Region map saved to map.png" in run.stdout
    saved = Image.open(tmp_path / "map.png")
    assert saved.format == "PNG" and saved.width == 400


async def test_automatic_pdf_waits_for_the_region_map_and_shows_it(live_server: LiveServer,
                                                                   worker: WorkerProcess) -> None:
    admin = await new_admin(live_server)
    pro = await new_professional(live_server, admin)
    result = await analysed(live_server, pro, images.jpeg(768, 512, seed=21), "street.jpg")
    report = await ready_report(live_server, pro, result.report_id, timeout=120)
    assert report.state == common_pb2.REPORT_STATE_READY, report.failure_reason
    text = " ".join(pdf_text((await download(live_server, pro, report.id)).data).split())
    assert "Where in the image" in text and "How to read the map" in text
    assert "No region map" not in text
