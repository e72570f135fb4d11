"""SIGTERM while 20 uploads are in flight: those that can finish within the grace period complete, the rest
fail cleanly, and nothing is half-stored (every stored image has its bytes and its analysis).

A call cancelled by the shutdown while its commit was already under way has an outcome the client cannot
know; such an upload is stored whole, and replaying its request_id returns it, as for any network failure.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc import aio
from pixelcheck.v1 import auth_pb2_grpc, ingestion_pb2, ingestion_pb2_grpc
from sqlalchemy import select

from pixelcheck.analysis.models import Analysis
from pixelcheck.blobs import make_blob_store
from pixelcheck.db import make_engine, make_session_factory
from pixelcheck.ingestion.models import Image
from pixelcheck.ingestion.service import image_key
from pixelcheck.settings import Settings
from tests.e2e.flows import new_user
from tests.e2e.uploads import upload_messages
from tests.processes import ServerProcess
from tests.reliability.steps import UploadOutcome, small_jpegs

pytestmark = [pytest.mark.reliability, pytest.mark.asyncio(loop_scope="session")]

UPLOADS = 20
GRACE_SECONDS = 2.0
CHUNK = 4 * 1024


async def _paced(data: bytes, pause: float, request_id: str,
                 sending: set[str] | None) -> AsyncIterator[ingestion_pb2.UploadImageRequest]:
    for message in upload_messages(data, "inflight.jpg", chunk=CHUNK, request_id=request_id):
        yield message
        if sending is not None:
            sending.add(request_id)  # its metadata and first chunk are on their way
        await asyncio.sleep(pause)


async def _upload(channel: aio.Channel, metadata: tuple[tuple[str, str], ...], data: bytes,
                  pause: float, request_id: str, sending: set[str] | None = None) -> UploadOutcome:
    stub = ingestion_pb2_grpc.IngestionServiceStub(channel)
    try:
        response = await stub.UploadImage(_paced(data, pause, request_id, sending), metadata=metadata,
                                          timeout=60)
    except aio.AioRpcError as error:
        return UploadOutcome(error.code())
    return UploadOutcome(grpc.StatusCode.OK, response.image.id)


async def test_sigterm_during_uploads_completes_or_cleanly_fails_each_and_stores_nothing_by_half(
        reliability_settings: Settings, tmp_path: Path) -> None:
    settings = reliability_settings.with_overrides(grace_seconds=GRACE_SECONDS)
    server = ServerProcess(settings, tmp_path / "server.log").start()
    channel = aio.insecure_channel(server.address)
    try:
        user = await new_user(auth_pb2_grpc.AuthServiceStub(channel))
        payloads = small_jpegs(UPLOADS, seed=9500)
        # Half need ~0.5 s more after SIGTERM (they finish in the grace period), half ~5 s (they cannot).
        pauses = [0.05 if i % 2 == 0 else 0.5 for i in range(UPLOADS)]
        request_ids = [f"shutdown-{i}" for i in range(UPLOADS)]
        sending: set[str] = set()
        inflight = asyncio.gather(*(_upload(channel, user.metadata, data, pause, rid, sending)
                                    for data, pause, rid in zip(payloads, pauses, request_ids, strict=True)))
        deadline = time.monotonic() + 60
        while len(sending) < UPLOADS:  # every upload is under way before the server is told to stop
            assert time.monotonic() < deadline, f"only {len(sending)} of {UPLOADS} uploads started"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # their first chunks reach the server
        server.signal(signal.SIGTERM)
        outcomes = await inflight
        exit_code = await asyncio.to_thread(server.wait, GRACE_SECONDS + 20)
    finally:
        await channel.close()
        server.stop()

    assert exit_code == 0
    codes = Counter(o.code for o in outcomes)
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}, codes
    assert codes[grpc.StatusCode.OK] >= UPLOADS // 2, codes  # the quick half finished within the grace period
    accepted = {o.image_id for o in outcomes if o.code is grpc.StatusCode.OK}
    engine = make_engine(settings.resolved_database_url, pool_size=1)
    blobs = make_blob_store(settings, make_session_factory(engine, readonly=True))
    try:
        with make_session_factory(engine)() as session:
            stored = set(session.scalars(select(Image.id).where(Image.owner_id == user.user.id)))
            analysed = set(session.scalars(select(Analysis.image_id).where(Analysis.image_id.in_(stored))))
            with_bytes = {i for i in stored if blobs.get(session, image_key(i)) is not None}
    finally:
        engine.dispose()
    assert accepted <= stored
    assert analysed == stored and with_bytes == stored  # nothing stored by half
    # Cut off while committing or while the response was on its way: stored whole, recoverable by a replay.
    ambiguous = stored - accepted
    if ambiguous:
        again = ServerProcess(settings, tmp_path / "server-again.log").start()
        channel = aio.insecure_channel(again.address)
        try:
            for i, outcome in enumerate(outcomes):
                if outcome.code is not grpc.StatusCode.OK:
                    replay = await _upload(channel, user.metadata, payloads[i], 0, request_ids[i])
                    assert replay.code is grpc.StatusCode.OK
                    stored.discard(replay.image_id)
        finally:
            await channel.close()
            again.stop()
        assert not (ambiguous & stored), "a replay of its request_id returns every ambiguous upload"
