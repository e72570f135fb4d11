"""Video clips through real stubs, a real worker and Redis: an MP4 uploaded, its frames read as they happen,
per-frame verdicts with their times, AI segments, the clip verdict with its explanation and the note that its
sound was not analysed, the phone named by its tags, the CSV and PDF reports; and each kind of bad clip refused
with its reason and nothing stored."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image
from pixelcheck.v1 import common_pb2, results_pb2, results_pb2_grpc

from pixelcheck.client.sources import UploadSource
from tests import images, videos
from tests.e2e.flows import SignedInUser, fails, failure_of, new_user
from tests.e2e.readme import run_grpcurl_script, section_sh_block
from tests.e2e.servers import LiveServer
from tests.e2e.test_animations import AI_FRAME, REAL_FRAME, judged_with_a_generated_stretch
from tests.e2e.test_cli_client import signed_in_cli
from tests.e2e.test_evidence import ready_map
from tests.e2e.test_upload_rejections import eventually_rejected, rejected, stored_images
from tests.e2e.uploads import state_name, upload, upload_messages, verdict_part, watch
from tests.processes import WorkerProcess
from tests.unit.detector.conftest import shared_root

pytestmark = pytest.mark.asyncio(loop_scope="session")
PHONE_TAGS = {"com.apple.quicktime.make": "Apple", "com.apple.quicktime.model": "iPhone 15 Pro"}


def mixed_mp4() -> bytes:
    """Eight seconds at 2 frames a second: a photograph, generated frames from 0:03 to 0:06, the photograph again
    (each moved a pixel on), in high-quality H.264. Skips without the shared image pool."""
    paths = [shared_root() / name for name in (REAL_FRAME, AI_FRAME)]
    if not all(path.exists() for path in paths):
        pytest.skip("the shared image pool is not present: set PIXELCHECK_SHARED_DIR")
    real, ai = (np.asarray(Image.open(path).convert("RGB").resize((320, 240))) for path in paths)
    pictures = [np.ascontiguousarray(np.roll(ai if 6 <= i < 12 else real, i, axis=1)) for i in range(16)]
    return videos.clip("mp4-h264", fps=2, pictures=pictures, crf=4)


async def test_an_mp4_from_a_phone_is_judged_frame_by_frame_on_its_timeline(live_server: LiveServer,
                                                                           worker: WorkerProcess) -> None:
    user = await new_user(live_server.auth)
    clip = videos.clip("mp4-h264", seconds=4, fps=10, width=192, height=144, audio=True, tags=PHONE_TAGS)
    response = await upload(live_server.channel, user.metadata, clip, "IMG_0001.MP4", content_type="video/mp4")
    assert response.image.content_type == "video/mp4" and (response.image.width, response.image.height) == (192, 144)

    events = await watch(live_server.channel, user.metadata, response.image.id)
    frame_messages = [e.message for e in events if e.message.endswith(" frames")]
    assert frame_messages and frame_messages[-1] == "Examining the pixels of each frame: 4 of 4 frames"
    final = events[-1].result
    assert state_name(final.state) == "SUCCEEDED" and final.media_kind == results_pb2.MEDIA_KIND_VIDEO
    timeline = final.timeline
    assert (timeline.duration_ms, timeline.frames_in_file, timeline.frames_read, timeline.frames_skipped) == (
        4000, 40, 4, 0)
    assert [(f.index, f.time_ms) for f in timeline.frames] == [(0, 0), (10, 1000), (20, 2000), (30, 3000)]
    assert all(0 <= f.prob_ai <= 1 and f.label in (common_pb2.LABEL_AI, common_pb2.LABEL_REAL)
               for f in timeline.frames)
    assert final.label in (common_pb2.LABEL_AI, common_pb2.LABEL_REAL) and 0.5 <= final.confidence <= 1
    assert timeline.has_audio and final.explanation.endswith("The clip's sound was not analysed: only its "
                                                             "pictures were.")
    assert (final.provenance.camera_make, final.provenance.camera_model) == ("Apple", "iPhone 15 Pro")
    assert (final.image_facts.format, final.image_facts.width) == ("MP4", 192)

    results = results_pb2_grpc.ResultsServiceStub(live_server.channel)
    got = (await results.GetResult(results_pb2.GetResultRequest(image_id=response.image.id),
                                   metadata=user.metadata)).result
    assert verdict_part(got) == verdict_part(final)


async def test_generated_frames_of_a_clip_make_a_segment_in_the_result_csv_and_pdf(live_server: LiveServer,
                                                                                  worker: WorkerProcess) -> None:
    final = await judged_with_a_generated_stretch(live_server, mixed_mp4(), "mixed.mp4", "VIDEO", key_frame=6)
    assert final.media_kind == results_pb2.MEDIA_KIND_VIDEO and final.timeline.frames_in_file == 16


@pytest.mark.parametrize(("clip", "code", "reason"), [
    (lambda: videos.without_box(videos.clip("mp4-h264"), b"moov"), grpc.StatusCode.INVALID_ARGUMENT,
     "VIDEO_TRUNCATED"),
    (lambda: videos.clip("mp4-h264")[:-300], grpc.StatusCode.INVALID_ARGUMENT, "VIDEO_TRUNCATED"),
    (lambda: videos.clip("mp4-mpeg4"), grpc.StatusCode.INVALID_ARGUMENT, "VIDEO_UNSUPPORTED_CODEC"),
    (videos.empty_mp4, grpc.StatusCode.INVALID_ARGUMENT, "VIDEO_EMPTY"),
    (lambda: videos.with_declared_duration(videos.clip("mp4-h264"), 10 * 3600), grpc.StatusCode.RESOURCE_EXHAUSTED,
     "VIDEO_TOO_LONG"),
], ids=["index-missing", "cut-inside-index", "mpeg4-codec", "zero-length", "claims-ten-hours"])
async def test_a_bad_clip_is_refused_with_its_reason_and_nothing_is_stored(live_server: LiveServer, clip, code,  # type: ignore[no-untyped-def]
                                                                           reason: str) -> None:
    user = await new_user(live_server.auth)
    failure = await rejected(live_server, user, upload_messages(clip(), "clip.mp4"))
    assert failure.code == code and failure.reason == reason
    assert stored_images(live_server, user) == 0
    events = await eventually_rejected(live_server, user)
    assert [e.payload["reason"] for e in events] == [reason]


async def test_the_cli_uploads_a_clip_declaring_its_type_and_shows_the_timeline(
        live_server: LiveServer, worker: WorkerProcess, tmp_path: Path) -> None:
    cli, _, _ = await signed_in_cli(live_server, tmp_path)
    (tmp_path / "clip.webm").write_bytes(videos.clip("webm-vp9", seconds=3, fps=10))
    run = await cli("client", "upload", "--watch", "clip.webm")
    assert run.code == 0, run.stderr
    assert "clip.webm" in run.stdout and "Timeline    3 of 30 frames read over 0:03" in run.stdout
    assert [line.split()[:2] for line in run.stdout.splitlines() if line[:2] == "0:"] == [
        ["0:00", "0"], ["0:01", "10"], ["0:02", "20"]]
    assert UploadSource.of(tmp_path / "clip.webm").head[:4] == b"\x1a\x45\xdf\xa3"


async def test_the_region_map_of_a_clip_is_of_its_first_frame(live_server: LiveServer,
                                                              worker: WorkerProcess) -> None:
    user = await new_user(live_server.auth)
    clip = videos.clip("webm-vp9", seconds=1, width=256, height=192)
    image = (await upload(live_server.channel, user.metadata, clip, "wide.webm")).image
    await watch(live_server.channel, user.metadata, image.id)
    grid = (await ready_map(live_server, user, image.id)).region_map
    assert grid.state == results_pb2.REGION_MAP_STATE_READY
    assert sum((r.right - r.left) * (r.bottom - r.top) for r in grid.regions) == 256 * 192
    stub = results_pb2_grpc.ResultsServiceStub(live_server.channel)
    picture = await stub.GetRegionMap(results_pb2.GetRegionMapRequest(image_id=image.id, max_side=128),
                                      metadata=user.metadata)
    assert Image.open(io.BytesIO(picture.png)).format == "PNG" and picture.region_map == grid


async def mapped(stub: results_pb2_grpc.ResultsServiceStub, user: SignedInUser,
                 request: results_pb2.GetRegionMapRequest, timeout: float = 120) -> results_pb2.GetRegionMapResponse:
    """GetRegionMap asked again, each time after the pause its RetryInfo says, until the map is READY."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await stub.GetRegionMap(request, metadata=user.metadata)
        except grpc.aio.AioRpcError as error:
            failure = failure_of(error)
            assert failure.code == grpc.StatusCode.FAILED_PRECONDITION and failure.reason == "REGION_MAP_NOT_READY"
            assert failure.retry_delay_seconds and asyncio.get_running_loop().time() < deadline, failure
            await asyncio.sleep(failure.retry_delay_seconds)


async def test_the_region_map_of_a_later_frame_read_is_made_of_that_frame(live_server: LiveServer,
                                                                         worker: WorkerProcess) -> None:
    # Two seconds at 2 frames a second: flat grey, then a textured picture from 0:01 (frame 2) on. The flat
    # frame's regions are alike and score alike; the textured frame's map is its own.
    flat, textured = np.full((256, 384, 3), 128, np.uint8), np.asarray(images.picture(384, 256, seed=23))
    clip = videos.clip("mp4-h264", fps=2, pictures=[flat, flat, textured, textured], crf=4)
    user = await new_user(live_server.auth)
    image = (await upload(live_server.channel, user.metadata, clip, "cut.mp4")).image
    final = (await watch(live_server.channel, user.metadata, image.id))[-1].result
    assert state_name(final.state) == "SUCCEEDED"
    assert [(f.index, f.time_ms) for f in final.timeline.frames] == [(0, 0), (2, 1000)]
    stub = results_pb2_grpc.ResultsServiceStub(live_server.channel)

    unread = await fails(stub.GetRegionMap(results_pb2.GetRegionMapRequest(image_id=image.id, frame_index=1),
                                           metadata=user.metadata))
    assert (unread.code, unread.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "FRAME_NOT_ANALYSED")
    assert "frame_index" in unread.field_violations and unread.message.endswith("timeline read: 0, 2")
    negative = await fails(stub.GetRegionMap(results_pb2.GetRegionMapRequest(image_id=image.id, frame_index=-1),
                                             metadata=user.metadata))
    assert (negative.code, negative.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FRAME_INDEX")
    assert "frame_index" in negative.field_violations

    later = await mapped(stub, user, results_pb2.GetRegionMapRequest(image_id=image.id, frame_index=2, max_side=384))
    assert (later.frame.index, later.frame.time_ms) == (2, 1000)
    assert later.frame == final.timeline.frames[1]
    assert later.region_map.state == results_pb2.REGION_MAP_STATE_READY and len(later.region_map.regions) == 6
    assert sum((r.right - r.left) * (r.bottom - r.top) for r in later.region_map.regions) == 384 * 256
    png = Image.open(io.BytesIO(later.png))
    assert png.format == "PNG" and png.size == (later.width, later.height) and later.width == 384

    first = await mapped(stub, user, results_pb2.GetRegionMapRequest(image_id=image.id, max_side=384))
    assert first.frame == final.timeline.frames[0]
    [flat_score] = {r.prob_ai for r in first.region_map.regions}  # every region of the flat frame alike
    assert {r.prob_ai for r in later.region_map.regions} != {flat_score} and first.png != later.png
    by_index = await stub.GetRegionMap(results_pb2.GetRegionMapRequest(image_id=image.id, frame_index=0,
                                                                       max_side=384), metadata=user.metadata)
    assert by_index.png == first.png and by_index.region_map == first.region_map  # frame 0 is the first frame
    result = (await stub.GetResult(results_pb2.GetResultRequest(image_id=image.id), metadata=user.metadata)).result
    assert result.region_map == first.region_map  # the result's map stays the first frame's

    still = (await upload(live_server.channel, user.metadata, images.jpeg(320, 256, seed=4), "still.jpg")).image
    await watch(live_server.channel, user.metadata, still.id)
    refused = await fails(stub.GetRegionMap(results_pb2.GetRegionMapRequest(image_id=still.id, frame_index=0),
                                            metadata=user.metadata))
    assert (refused.code, refused.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "NOT_A_MOVING_IMAGE")
    assert "frame_index" in refused.field_violations


async def test_the_cli_saves_the_region_map_of_a_chosen_frame_and_says_which(
        live_server: LiveServer, worker: WorkerProcess, tmp_path: Path) -> None:
    cli, _, _ = await signed_in_cli(live_server, tmp_path, "framecli")
    (tmp_path / "clip.webm").write_bytes(videos.clip("webm-vp9", seconds=3, fps=10, width=256, height=192))
    uploaded = await cli("client", "upload", "--watch", "clip.webm", "--json")
    assert uploaded.code == 0, uploaded.stderr
    image_id = uploaded.json()[0]["upload"]["image"]["id"]  # type: ignore[index]
    run = await cli("client", "result", image_id, "--map", "frame.png", "--frame", "20")
    assert run.code == 0, run.stderr
    assert "Region map  PENDING" in run.stdout or "Region map  READY" in run.stdout  # the first frame's, as before
    assert "Region map of frame 20 at 0:02: READY, 1x2 regions" in run.stdout
    assert Image.open(tmp_path / "frame.png").format == "PNG"
    unread = await cli("client", "result", image_id, "--map", "frame.png", "--frame", "5")
    assert unread.code != 0 and "FRAME_NOT_ANALYSED" in unread.stderr + unread.stdout
    assert "timeline read: 0, 10, 20" in unread.stderr + unread.stdout


async def test_the_readme_clip_commands_upload_watch_and_map_a_frame_through_grpcurl(
        live_server: LiveServer, worker: WorkerProcess, tmp_path: Path) -> None:
    script = section_sh_block("### Video clips").replace("ADDR=127.0.0.1:50051", f"ADDR={live_server.address}")
    (tmp_path / "clip.mp4").write_bytes(videos.clip("mp4-h264", seconds=3, fps=10, width=320, height=256,
                                                    scenes=(0.0, 1.5), tags=PHONE_TAGS))
    user = await new_user(live_server.auth)
    *events, result, frame_map = await run_grpcurl_script(script, token=user.access_token, cwd=tmp_path,
                                                           timeout=120)
    assert events[-1]["stage"] == "ANALYSIS_STAGE_DONE"
    assert "Examining the pixels of each frame: 3 of 3 frames" in [e["message"] for e in events]
    assert result["media_kind"] == "MEDIA_KIND_VIDEO" and result["explanation"].endswith(
        result["timeline"]["summary"])
    frames = result["timeline"]["frames"]
    assert [f.get("index", 0) for f in frames][:2] == [0, 10] and frames[1]["time_ms"] == "1000"
    assert frame_map == {"frame": {**frames[1]}, "state": "REGION_MAP_STATE_READY"}
    assert (tmp_path / "frame-map.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
