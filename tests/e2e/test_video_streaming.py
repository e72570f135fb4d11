"""Large clips through real stubs, a real worker and a local web server: a 70 MiB MP4 (over the old 64 MiB limit)
uploaded and imported by URL, streamed to a temporary file in the spool folder, stored, judged from a local
copy, and no temporary file left on the server or the worker, whether the clip was judged or refused."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from pixelcheck.v1 import ingestion_pb2, ingestion_pb2_grpc, results_pb2, results_pb2_grpc

from pixelcheck.settings import Settings
from tests import videos
from tests.e2e.flows import new_user
from tests.e2e.servers import LiveServer
from tests.e2e.test_evidence import ready_map
from tests.e2e.test_upload_rejections import rejected, stored_images
from tests.e2e.uploads import state_name, upload, upload_messages, watch
from tests.image_web_server import Exchange, ImageWebServer
from tests.processes import WorkerProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")
WEB_HOST = "127.0.0.3"
SIZE = 70 << 20


async def emptied(spool: Path, timeout: float = 30.0) -> None:
    """Waits until the spool folder is empty: a worker may still be reading a clip for an idle region map."""
    deadline = asyncio.get_running_loop().time() + timeout
    while list(spool.iterdir()):
        assert asyncio.get_running_loop().time() < deadline, f"left in the spool: {list(spool.iterdir())}"
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def spool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(scope="module")
def server_settings(base_settings: Settings, migrated_database_url: str, spool: Path) -> Settings:
    return base_settings.with_overrides(signin_max_failures=10_000, signin_address_max_failures=10_000,
                                        spool_dir=str(spool), url_fetch_allow=f"{WEB_HOST}/32",
                                        url_fetch_timeout_seconds=60.0)


@pytest.fixture(scope="module")
def big_clip() -> bytes:
    return videos.padded(videos.clip("mp4-h264", seconds=2, fps=10, width=256, height=192), SIZE)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def web(big_clip: bytes) -> AsyncIterator[ImageWebServer]:
    server = ImageWebServer(WEB_HOST)

    async def clip(exchange: Exchange) -> None:
        await exchange.respond(200, big_clip, "video/mp4")

    server.routes = {"/big.mp4": clip}
    await server.start()
    yield server
    await server.stop()


async def test_a_refused_large_clip_stores_nothing_and_leaves_no_temporary_file(
        live_server: LiveServer, spool: Path) -> None:
    user = await new_user(live_server.auth)
    broken = videos.padded(videos.without_box(videos.clip("mp4-h264"), b"moov"), 20 << 20)
    failure = await rejected(live_server, user, upload_messages(broken, "broken.mp4", content_type="video/mp4"))
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "VIDEO_TRUNCATED")
    mismatch = videos.padded(videos.clip("mp4-h264"), 20 << 20)
    failure = await rejected(live_server, user, upload_messages(mismatch, "odd.mp4", content_type="video/mp4",
                                                               sha256="0" * 64))
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "CHECKSUM_MISMATCH")
    assert stored_images(live_server, user) == 0
    assert list(spool.iterdir()) == []  # first in the module: no worker is reading a clip into the spool yet


async def test_a_70_mib_clip_is_uploaded_judged_and_leaves_no_temporary_file(
        live_server: LiveServer, worker: WorkerProcess, spool: Path, big_clip: bytes) -> None:
    user = await new_user(live_server.auth)
    response = await upload(live_server.channel, user.metadata, big_clip, "big.mp4", content_type="video/mp4",
                            sha256=None)
    image = response.image
    assert (image.content_type, image.size_bytes, image.sha256) == (
        "video/mp4", SIZE, hashlib.sha256(big_clip).hexdigest())
    events = await watch(live_server.channel, user.metadata, image.id)
    final = events[-1].result
    assert state_name(final.state) == "SUCCEEDED" and final.media_kind == results_pb2.MEDIA_KIND_VIDEO
    assert (final.timeline.frames_in_file, final.image_facts.size_bytes) == (20, SIZE)
    grid = (await ready_map(live_server, user, image.id)).region_map  # of its first frame, from a local copy
    assert grid.state == results_pb2.REGION_MAP_STATE_READY
    stub = results_pb2_grpc.ResultsServiceStub(live_server.channel)
    picture = await stub.GetRegionMap(results_pb2.GetRegionMapRequest(image_id=image.id, max_side=128),
                                      metadata=user.metadata)
    assert picture.png.startswith(b"\x89PNG")
    await emptied(spool)  # the server's upload spool and the worker's local copies are all gone


async def test_a_clip_over_ten_mib_is_imported_by_url(live_server: LiveServer, worker: WorkerProcess, spool: Path,
                                                      web: ImageWebServer, big_clip: bytes) -> None:
    user = await new_user(live_server.auth)
    stub = ingestion_pb2_grpc.IngestionServiceStub(live_server.channel)
    response = await stub.ImportImage(ingestion_pb2.ImportImageRequest(url=web.url("/big.mp4")),
                                      metadata=user.metadata)
    assert (response.image.content_type, response.image.size_bytes, response.duplicate) == ("video/mp4", SIZE, False)
    assert response.image.sha256 == hashlib.sha256(big_clip).hexdigest()
    events = await watch(live_server.channel, user.metadata, response.image.id)
    assert state_name(events[-1].result.state) == "SUCCEEDED"
    await emptied(spool)
