"""Upload to verdict through real stubs, a real Celery worker and Redis: stages, results, visibility."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from pixelcheck.v1 import common_pb2, ingestion_pb2, ingestion_pb2_grpc, results_pb2, results_pb2_grpc
from sqlalchemy import func, select

from pixelcheck.analysis.models import Analysis
from pixelcheck.audit.models import AuditEvent
from pixelcheck.ingestion.models import Image
from tests import images
from tests.e2e.flows import fails, new_user
from tests.e2e.servers import LiveServer
from tests.e2e.uploads import stage_names, state_name, upload, verdict_part, watch
from tests.processes import WorkerProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")

ORDER = ["QUEUED", "DECODING", "PROVENANCE", "PIXEL_MODEL", "FUSION", "SAVING", "DONE"]


@pytest.mark.parametrize(("make", "filename", "content_type"), [
    (images.jpeg, "photo.jpg", "image/jpeg"), (images.png, "render.png", "image/png"),
    (images.webp, "shot.webp", "image/webp"), (images.heic, "IMG_0042.HEIC", "image/heic"),
    (images.avif, "frame.avif", "image/avif"), (images.bmp, "LOL_0017.bmp", "image/bmp"),
    (images.tiff, "scan-0001.tif", "image/tiff")])
async def test_upload_is_analysed_with_stages_in_order_and_result_agrees(
        live_server: LiveServer, worker: WorkerProcess, make, filename: str, content_type: str) -> None:  # type: ignore[no-untyped-def]
    user = await new_user(live_server.auth)
    response = await upload(live_server.channel, user.metadata, make(800, 600, seed=hash(filename) % 100), filename)
    assert response.image.content_type == content_type
    assert (response.image.width, response.image.height) == (800, 600)
    assert response.image.analysis_state == common_pb2.ANALYSIS_STATE_QUEUED
    assert not response.duplicate

    events = await watch(live_server.channel, user.metadata, response.image.id)
    stages = stage_names(events)
    assert stages == sorted(stages, key=ORDER.index), stages  # never goes backwards
    assert stages[-1] == "DONE" and state_name(events[-1].state) == "SUCCEEDED"
    assert [e.progress for e in events] == sorted(e.progress for e in events)
    final = events[-1].result
    assert final.label in (common_pb2.LABEL_AI, common_pb2.LABEL_REAL)
    assert 0.5 <= final.confidence <= 1.0 and 0.0 <= final.prob_ai <= 1.0
    assert final.signals and all(s.explanation for s in final.signals)
    assert final.explanation and final.model_version
    assert final.image_facts.width == 800
    assert final.image_facts.format == {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP",
                                        "image/heic": "HEIF", "image/avif": "AVIF", "image/bmp": "BMP",
                                        "image/tiff": "TIFF"}[content_type]
    assert final.HasField("stability") and 0.0 <= final.stability.social_copy_prob_ai <= 1.0
    assert final.stability.stable == (not final.stability.flips_when_shared and not final.stability.crops_disagree)
    assert (final.confidence_band == common_pb2.CONFIDENCE_BAND_LOW) or final.stability.stable
    assert final.HasField("generator_family") == (final.label == common_pb2.LABEL_AI)
    if final.HasField("generator_family"):
        assert final.generator_family.explanation and final.generator_family.runner_up

    results = results_pb2_grpc.ResultsServiceStub(live_server.channel)
    got = (await results.GetResult(results_pb2.GetResultRequest(image_id=response.image.id),
                                   metadata=user.metadata)).result
    assert verdict_part(got) == verdict_part(final)
    image = (await ingestion_pb2_grpc.IngestionServiceStub(live_server.channel).GetImage(
        ingestion_pb2.GetImageRequest(image_id=response.image.id), metadata=user.metadata)).image
    assert image.analysis_state == common_pb2.ANALYSIS_STATE_SUCCEEDED


async def test_watching_a_finished_analysis_yields_one_event_and_ends(live_server: LiveServer,
                                                                      worker: WorkerProcess) -> None:
    user = await new_user(live_server.auth)
    image_id = (await upload(live_server.channel, user.metadata, images.jpeg(seed=7))).image.id
    await watch(live_server.channel, user.metadata, image_id)
    events = await watch(live_server.channel, user.metadata, image_id)
    assert len(events) == 1 and events[0].HasField("result")
    assert state_name(events[0].state) == "SUCCEEDED"


async def test_the_workers_verdict_is_in_the_audit_trail_when_the_analysis_ends(live_server: LiveServer,
                                                                                worker: WorkerProcess) -> None:
    user = await new_user(live_server.auth)
    image_id = (await upload(live_server.channel, user.metadata, images.jpeg(seed=8))).image.id
    await watch(live_server.channel, user.metadata, image_id)

    def stored() -> list[AuditEvent]:
        # Read straight from the database: the worker, not this process, must have written the event.
        with live_server.container.read_sessions() as session:
            return list(session.scalars(select(AuditEvent).where(AuditEvent.action == "analysis.succeeded",
                                                                 AuditEvent.target == f"image:{image_id}")))

    # The worker publishes the verdict, then commits the event before it acknowledges the task.
    deadline = time.monotonic() + 30
    while not (events := await asyncio.to_thread(stored)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert [event.actor_id for event in events] == [user.user.id]


async def test_same_bytes_again_return_the_existing_image_without_a_second_analysis(
        live_server: LiveServer, worker: WorkerProcess) -> None:
    user = await new_user(live_server.auth)
    data = images.jpeg(seed=11)
    first = await upload(live_server.channel, user.metadata, data, "a.jpg")
    second = await upload(live_server.channel, user.metadata, data, "copy-of-a.jpg")
    assert second.duplicate and second.image.id == first.image.id
    with live_server.container.read_sessions() as session:
        assert session.scalar(select(func.count()).select_from(Image).where(
            Image.owner_id == user.user.id)) == 1
        assert session.scalar(select(func.count()).select_from(Analysis).where(
            Analysis.owner_id == user.user.id)) == 1
    other = await new_user(live_server.auth)
    theirs = await upload(live_server.channel, other.metadata, data, "a.jpg")
    assert not theirs.duplicate and theirs.image.id != first.image.id  # dedupe is per user


async def test_replayed_request_id_returns_the_first_response(live_server: LiveServer,
                                                               worker: WorkerProcess) -> None:
    user = await new_user(live_server.auth)
    first = await upload(live_server.channel, user.metadata, images.png(seed=3), "x.png", request_id="req-42")
    replay = await upload(live_server.channel, user.metadata, images.png(seed=3), "x.png", request_id="req-42")
    assert replay.image.id == first.image.id and replay.duplicate == first.duplicate is False


async def test_twenty_concurrent_uploads_of_the_same_bytes_end_as_one_image(live_server: LiveServer,
                                                                            worker: WorkerProcess) -> None:
    user = await new_user(live_server.auth)
    data = images.jpeg(seed=21)
    responses = await asyncio.gather(*(upload(live_server.channel, user.metadata, data) for _ in range(20)))
    assert len({r.image.id for r in responses}) == 1
    assert sum(not r.duplicate for r in responses) == 1


async def test_another_users_image_is_not_found_everywhere(live_server: LiveServer, worker: WorkerProcess) -> None:
    owner, stranger = await new_user(live_server.auth), await new_user(live_server.auth)
    image_id = (await upload(live_server.channel, owner.metadata, images.jpeg(seed=5))).image.id
    ingestion = ingestion_pb2_grpc.IngestionServiceStub(live_server.channel)
    results = results_pb2_grpc.ResultsServiceStub(live_server.channel)
    for call in (
        ingestion.GetImage(ingestion_pb2.GetImageRequest(image_id=image_id), metadata=stranger.metadata),
        ingestion.DeleteImage(ingestion_pb2.DeleteImageRequest(image_id=image_id), metadata=stranger.metadata),
        results.GetResult(results_pb2.GetResultRequest(image_id=image_id), metadata=stranger.metadata),
    ):
        failure = await fails(call)
        assert failure.code == grpc.StatusCode.NOT_FOUND and failure.reason == "IMAGE_NOT_FOUND"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await watch(live_server.channel, stranger.metadata, image_id)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await ingestion.ListImages(ingestion_pb2.ListImagesRequest(), metadata=stranger.metadata)
    assert image_id not in [i.id for i in listed.images]


@pytest.mark.parametrize("bad_id", ["", "42", "../etc", "X" * 32, "0" * 33])
async def test_malformed_ids_are_invalid_arguments(live_server: LiveServer, bad_id: str) -> None:
    user = await new_user(live_server.auth)
    results = results_pb2_grpc.ResultsServiceStub(live_server.channel)
    failure = await fails(results.GetResult(results_pb2.GetResultRequest(image_id=bad_id), metadata=user.metadata))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.reason == "INVALID_ID"


async def test_images_list_newest_first_and_paginate(live_server: LiveServer, worker: WorkerProcess) -> None:
    user = await new_user(live_server.auth)
    ids = [(await upload(live_server.channel, user.metadata, images.jpeg(64, 64, seed=100 + i))).image.id
           for i in range(5)]
    stub = ingestion_pb2_grpc.IngestionServiceStub(live_server.channel)
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListImages(ingestion_pb2.ListImagesRequest(page_size=2, page_token=token),
                                     metadata=user.metadata)
        assert page.total_size == 5 and len(page.images) <= 2
        seen += [i.id for i in page.images]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids))
    failure = await fails(stub.ListImages(ingestion_pb2.ListImagesRequest(page_size=-1), metadata=user.metadata))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.reason == "INVALID_PAGE_SIZE"
    failure = await fails(stub.ListImages(ingestion_pb2.ListImagesRequest(page_token="forged"),
                                          metadata=user.metadata))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.reason == "INVALID_PAGE_TOKEN"


async def test_results_filter_by_label_and_filename_and_order_by_confidence(
        live_server: LiveServer, worker: WorkerProcess) -> None:
    user = await new_user(live_server.auth)
    for i, name in enumerate(["holiday-beach.jpg", "holiday-town.jpg", "cat.jpg"]):
        image_id = (await upload(live_server.channel, user.metadata, images.jpeg(seed=200 + i), name)).image.id
        await watch(live_server.channel, user.metadata, image_id)
    stub = results_pb2_grpc.ResultsServiceStub(live_server.channel)
    holiday = await stub.ListResults(results_pb2.ListResultsRequest(filename_contains="HOLIDAY"),
                                     metadata=user.metadata)
    assert holiday.total_size == 2 and {r.filename for r in holiday.results} == {"holiday-beach.jpg",
                                                                                   "holiday-town.jpg"}
    by_confidence = await stub.ListResults(results_pb2.ListResultsRequest(order_by="confidence desc"),
                                           metadata=user.metadata)
    confidences = [r.confidence for r in by_confidence.results]
    assert confidences == sorted(confidences, reverse=True) and by_confidence.total_size == 3
    labels = {r.label for r in by_confidence.results}
    for label in labels:
        only = await stub.ListResults(results_pb2.ListResultsRequest(label=label), metadata=user.metadata)
        assert only.results and all(r.label == label for r in only.results)
    failure = await fails(stub.ListResults(results_pb2.ListResultsRequest(order_by="size asc"),
                                           metadata=user.metadata))
    assert failure.reason == "INVALID_ORDER_BY"
    failure = await fails(stub.ListResults(results_pb2.ListResultsRequest(label=99), metadata=user.metadata))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.reason == "INVALID_ENUM_VALUE"


async def test_model_info_describes_the_detector_with_live_statistics(live_server: LiveServer,
                                                                       worker: WorkerProcess) -> None:
    user = await new_user(live_server.auth)
    image_id = (await upload(live_server.channel, user.metadata, images.jpeg(seed=300))).image.id
    await watch(live_server.channel, user.metadata, image_id)
    info = (await results_pb2_grpc.ResultsServiceStub(live_server.channel).GetModelInfo(
        results_pb2.GetModelInfoRequest(), metadata=user.metadata)).model
    assert info.name and info.version and len(info.weights_sha256) == 64
    assert 0 < info.threshold < 1 and info.validation_metrics
    assert info.statistics.inference_count >= 1 and info.statistics.p95_latency_ms > 0
    kinds = {rate.kind: rate for rate in info.false_positive_rates}
    assert {"professional", "text", "camera-originals"} <= set(kinds)
    assert all(rate.test_images > 0 and 0.0 <= rate.wrongly_called_ai <= 1.0 for rate in kinds.values())
    catches = {rate.family: rate for rate in info.family_catch_rates}
    assert {"gpt-image", "gemini-imagen", "flux", "gan"} <= set(catches)
    assert all(rate.name and 0.0 <= rate.caught <= 1.0 for rate in catches.values())
    assert "trimmed mean of the frames' calibrated logits" in info.moving_pictures
    compression = {row.variant: row for row in info.video_compression}
    assert list(compression) == ["original", "h264_phone", "h264_social", "hevc_phone", "vp9_web"]
    assert all(row.description and row.test_images >= row.ai_images > 0 and 0 < row.accuracy <= 1
               and 0 < row.roc_auc <= 1 and 0 <= row.ai_recall <= 1 and 0 <= row.real_accuracy <= 1
               for row in compression.values())
    assert info.video_compression_measured_with.startswith("scripts/eval-detector DATA --split test --videos --card")


async def test_delete_removes_image_bytes_and_analysis(live_server: LiveServer, worker: WorkerProcess) -> None:
    user = await new_user(live_server.auth)
    image_id = (await upload(live_server.channel, user.metadata, images.jpeg(seed=400))).image.id
    await watch(live_server.channel, user.metadata, image_id)
    stub = ingestion_pb2_grpc.IngestionServiceStub(live_server.channel)
    await stub.DeleteImage(ingestion_pb2.DeleteImageRequest(image_id=image_id), metadata=user.metadata)
    failure = await fails(stub.GetImage(ingestion_pb2.GetImageRequest(image_id=image_id), metadata=user.metadata))
    assert failure.code == grpc.StatusCode.NOT_FOUND
    with live_server.container.sessions() as session:
        assert live_server.container.blobs.get(session, f"image/{image_id}") is None
        assert session.scalar(select(Analysis).where(Analysis.image_id == image_id)) is None
