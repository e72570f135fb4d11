"""Animated images through real stubs, a real worker and Redis: upload, frames read as they happen, per-frame
verdicts with their times, AI segments, the clip verdict with its explanation, the CSV and PDF reports, the
CLI's timeline, and animations over the limits refused with nothing stored."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import grpc
import pytest
from PIL import Image, ImageChops
from pixelcheck.v1 import common_pb2, reports_pb2, results_pb2, results_pb2_grpc

from tests import images
from tests.e2e.flows import fails, new_admin, new_user
from tests.e2e.readme import run_grpcurl_script, section_sh_block
from tests.e2e.servers import LiveServer
from tests.e2e.test_cli_client import signed_in_cli
from tests.e2e.test_evidence import ready_map
from tests.e2e.test_reports import download, new_professional, ready_report, reports_stub
from tests.e2e.test_upload_rejections import eventually_rejected, rejected, stored_images
from tests.e2e.uploads import state_name, upload, upload_messages, verdict_part, watch
from tests.pdf_reading import pdf_text
from tests.processes import WorkerProcess
from tests.unit.detector.conftest import shared_root

pytestmark = pytest.mark.asyncio(loop_scope="session")

AI_FRAME = ("data/detector/ai/"
            "dalle-mini__dcsan__imagen__output_renders_huge-purple-octopus-climbing-up-54624381_dmin-1__c0.jpg")
REAL_FRAME = "data/detector/real/bsds500__BIDS__BSDS500__236017__c0.jpg"


def mixed_gif() -> bytes:
    """Eight one-second frames: a photograph, then three generated frames from 0:03, then the photograph again
    (each moved a pixel on, so that no two frames are the same). Skips without the shared image pool."""
    paths = [shared_root() / name for name in (REAL_FRAME, AI_FRAME)]
    if not all(path.exists() for path in paths):
        pytest.skip("the shared image pool is not present: set PIXELCHECK_SHARED_DIR")
    real, ai = (Image.open(path).convert("RGB") for path in paths)
    frames = [ImageChops.offset(picture, i, 0).convert("P", palette=Image.Palette.ADAPTIVE)
              for i, picture in enumerate([real] * 3 + [ai] * 3 + [real] * 2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=1000, loop=0)
    return buffer.getvalue()


async def test_an_animated_gif_is_judged_frame_by_frame_on_its_timeline(live_server: LiveServer,
                                                                       worker: WorkerProcess) -> None:
    user = await new_user(live_server.auth)
    response = await upload(live_server.channel, user.metadata,
                            images.animated("GIF", count=24, duration_ms=250, scenes=(0, 10)), "loop.gif")
    assert response.image.content_type == "image/gif" and (response.image.width, response.image.height) == (160, 120)

    events = await watch(live_server.channel, user.metadata, response.image.id)
    # Events published before the watch was subscribed are not replayed (the snapshot stands for them); those
    # heard count the frames read (tests/integration/test_animation_pipeline.py shows every one published). The
    # total is the 6 grid frames plus the scene cuts met so far: the cut at 2.5 s is known from the 4th frame read.
    frame_messages = [e.message for e in events if e.message.endswith(" frames")]
    published = [f"Examining the pixels of each frame: {n} of {6 if n < 4 else 7} frames" for n in range(1, 8)]
    assert frame_messages == published[7 - len(frame_messages):], frame_messages
    assert [e.progress for e in events] == sorted(e.progress for e in events)
    final = events[-1].result
    assert state_name(final.state) == "SUCCEEDED" and final.media_kind == results_pb2.MEDIA_KIND_ANIMATED
    timeline = final.timeline
    assert (timeline.duration_ms, timeline.frames_in_file, timeline.frames_read) == (6000, 24, 7)
    assert [(f.index, f.time_ms, f.scene_cut) for f in timeline.frames] == [
        (0, 0, False), (4, 1000, False), (8, 2000, False), (10, 2500, True), (12, 3000, False), (16, 4000, False),
        (20, 5000, False)]
    assert all(0 <= f.prob_ai <= 1 and f.label in (common_pb2.LABEL_AI, common_pb2.LABEL_REAL)
               for f in timeline.frames)
    assert final.label in (common_pb2.LABEL_AI, common_pb2.LABEL_REAL) and 0.5 <= final.confidence <= 1
    assert final.explanation.endswith(timeline.summary) and "One frame per 1 s" in timeline.sampling_policy
    assert final.image_facts.format == "GIF"

    results = results_pb2_grpc.ResultsServiceStub(live_server.channel)
    got = (await results.GetResult(results_pb2.GetResultRequest(image_id=response.image.id),
                                   metadata=user.metadata)).result
    assert verdict_part(got) == verdict_part(final)
    listed = (await results.ListResults(results_pb2.ListResultsRequest(), metadata=user.metadata)).results
    assert [r.timeline for r in listed] == [final.timeline]


async def test_a_still_picture_says_so(live_server: LiveServer, worker: WorkerProcess) -> None:
    user = await new_user(live_server.auth)
    image = (await upload(live_server.channel, user.metadata, images.png(320, 240, seed=5), "still.png")).image
    final = (await watch(live_server.channel, user.metadata, image.id))[-1].result
    assert final.media_kind == results_pb2.MEDIA_KIND_STILL and not final.HasField("timeline")


async def test_generated_frames_make_a_segment_in_the_result_csv_and_pdf(live_server: LiveServer,
                                                                        worker: WorkerProcess) -> None:
    await judged_with_a_generated_stretch(live_server, mixed_gif(), "mixed.gif", "ANIMATED", key_frame=3)


async def judged_with_a_generated_stretch(live_server: LiveServer, data: bytes, filename: str, media_kind: str, *,
                                          key_frame: int) -> results_pb2.AnalysisResult:
    """Uploads eight seconds with generated frames from 0:03 to 0:06 (mixed_gif and the like) as a
    PROFESSIONAL, and checks the frames, the segment and the explanation in the result, the CSV rows
    (`media_kind`, then a row per frame read) and the automatic PDF (with `key_frame` captioned at 0:03)."""
    pro = await new_professional(live_server, await new_admin(live_server))
    image = (await upload(live_server.channel, pro.metadata, data, filename)).image
    final = (await watch(live_server.channel, pro.metadata, image.id))[-1].result
    timeline = final.timeline
    assert [f.time_ms for f in timeline.frames] == [i * 1000 for i in range(8)]
    assert [f.label for f in timeline.frames] == [common_pb2.LABEL_REAL] * 3 + [common_pb2.LABEL_AI] * 3 + [
        common_pb2.LABEL_REAL] * 2
    assert [(s.start_ms, s.end_ms, s.frame_count) for s in timeline.segments] == [(3000, 6000, 3)]
    assert "Frames 0:03–0:06 read as generated; the rest as camera footage." in final.explanation

    report = await reports_stub(live_server).CreateReport(reports_pb2.CreateReportRequest(
        image_ids=[image.id], format=common_pb2.REPORT_FORMAT_CSV), metadata=pro.metadata)
    assert (await ready_report(live_server, pro, report.report.id)).state == common_pb2.REPORT_STATE_READY
    rows = list(csv.DictReader(io.StringIO((await download(live_server, pro, report.report.id)).data.decode())))
    assert [r["media_kind"] for r in rows] == [media_kind] + ["FRAME"] * 8
    assert rows[0]["ai_segments_ms"] == "3000-6000"
    assert [(r["frame_time_ms"], r["label"]) for r in rows[1:]] == [
        (str(i * 1000), "AI" if 3 <= i < 6 else "REAL") for i in range(8)]

    automatic = await ready_report(live_server, pro, final.report_id)  # a PROFESSIONAL's automatic PDF
    assert automatic.state == common_pb2.REPORT_STATE_READY
    text = pdf_text((await download(live_server, pro, final.report_id)).data)
    assert "Frame by frame" in text and "Frames 0:03–0:06 read as generated" in text
    assert "Key frames" in text and f"0:03 · frame {key_frame}" in text
    return final


async def test_the_cli_shows_the_timeline(live_server: LiveServer, worker: WorkerProcess, tmp_path: Path) -> None:
    cli, _, _ = await signed_in_cli(live_server, tmp_path)
    (tmp_path / "anim.gif").write_bytes(images.animated("GIF", count=8, duration_ms=500))
    run = await cli("client", "upload", "--watch", "anim.gif")
    assert run.code == 0, run.stderr
    assert "anim.gif" in run.stdout and "Timeline    4 of 8 frames read over 0:04" in run.stdout
    assert "P(AI)" in run.stdout and "None of the 4 frames read looks generated." in run.stdout
    assert [line.split()[:2] for line in run.stdout.splitlines() if line[:2] == "0:"] == [
        ["0:00", "0"], ["0:01", "2"], ["0:02", "4"], ["0:03", "6"]]


async def test_the_region_map_of_an_animation_is_of_its_first_frame(live_server: LiveServer,
                                                                   worker: WorkerProcess) -> None:
    user = await new_user(live_server.auth)
    image = (await upload(live_server.channel, user.metadata, images.animated("WEBP", count=4, width=512, height=320),
                          "wide.webp")).image
    await watch(live_server.channel, user.metadata, image.id)
    stub = results_pb2_grpc.ResultsServiceStub(live_server.channel)
    await fails(stub.GetRegionMap(results_pb2.GetRegionMapRequest(image_id=image.id), metadata=user.metadata))
    grid = (await ready_map(live_server, user, image.id)).region_map
    assert grid.state == results_pb2.REGION_MAP_STATE_READY
    assert sum((r.right - r.left) * (r.bottom - r.top) for r in grid.regions) == 512 * 320
    picture = await stub.GetRegionMap(results_pb2.GetRegionMapRequest(image_id=image.id, max_side=256),
                                      metadata=user.metadata)
    assert Image.open(io.BytesIO(picture.png)).format == "PNG" and picture.region_map == grid


async def test_a_gif_of_100000_frames_is_refused_and_nothing_is_stored(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    failure = await rejected(live_server, user, upload_messages(images.gif_declaring_frames(100_000), "many.gif"))
    assert failure.code == grpc.StatusCode.RESOURCE_EXHAUSTED and failure.reason == "ANIMATION_TOO_MANY_FRAMES"
    assert stored_images(live_server, user) == 0
    events = await eventually_rejected(live_server, user)
    assert [e.payload["reason"] for e in events] == ["ANIMATION_TOO_MANY_FRAMES"]


async def test_a_webp_frame_outside_its_canvas_is_refused(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    failure = await rejected(live_server, user, upload_messages(images.webp_with_frame_outside_canvas(), "a.webp"))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.reason == "ANIMATION_FRAME_OUTSIDE_CANVAS"
    assert stored_images(live_server, user) == 0


async def test_the_readme_animation_commands_run_as_written(live_server: LiveServer, worker: WorkerProcess,
                                                            tmp_path: Path) -> None:
    script = section_sh_block("## Animated images, frame by frame").replace(
        "ADDR=127.0.0.1:50051", f"ADDR={live_server.address}")
    (tmp_path / "anim.gif").write_bytes(images.animated("GIF", count=12, duration_ms=250))
    user = await new_user(live_server.auth)
    *events, result = await run_grpcurl_script(script, token=user.access_token, cwd=tmp_path)
    assert events[-1]["stage"] == "ANALYSIS_STAGE_DONE" and events[-1]["message"] == "Analysis finished"
    frames = [e["message"] for e in events if e["message"].endswith(" frames")]  # those after the watch began
    assert frames == [f"Examining the pixels of each frame: {n} of 3 frames" for n in range(4 - len(frames), 4)]
    assert result["media_kind"] == "MEDIA_KIND_ANIMATED" and result["explanation"].endswith(
        result["timeline"]["summary"])
    assert [(f.get("index", 0), f.get("time_ms", "0")) for f in result["timeline"]["frames"]] == [
        (4 * n, str(1000 * n)) for n in range(3)]
