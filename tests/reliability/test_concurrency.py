"""Races a user can start: the same bytes from 20 concurrent streams, one refresh token used 10 times at once."""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc
import pytest
from pixelcheck.v1 import auth_pb2
from sqlalchemy import func, select

from pixelcheck.analysis.models import Analysis
from pixelcheck.ingestion.models import Image
from pixelcheck.settings import Settings
from tests import images
from tests.e2e.conftest import start_live_server
from tests.e2e.flows import failure_of, new_user
from tests.reliability.steps import try_upload

pytestmark = [pytest.mark.reliability, pytest.mark.asyncio(loop_scope="session")]

STREAMS = 20
REFRESHES = 10


async def test_same_bytes_from_twenty_concurrent_streams_end_as_one_image(reliability_settings: Settings) -> None:
    server = await start_live_server(reliability_settings)
    try:
        user = await new_user(server.auth)
        data = images.jpeg(1024, 768, seed=9100)
        outcomes = await asyncio.gather(*(try_upload(server.channel, user.metadata, data, chunk=16 * 1024)
                                          for _ in range(STREAMS)))
        assert Counter(o.code for o in outcomes) == {grpc.StatusCode.OK: STREAMS}
        assert len({o.image_id for o in outcomes}) == 1
        assert sum(not o.duplicate for o in outcomes) == 1
        with server.container.read_sessions() as session:
            assert session.scalar(select(func.count()).select_from(Image).where(Image.owner_id == user.user.id)) == 1
            assert session.scalar(select(func.count()).select_from(Analysis).where(
                Analysis.owner_id == user.user.id)) == 1
    finally:
        await server.stop()


async def test_one_refresh_token_used_concurrently_has_exactly_one_winner(reliability_settings: Settings) -> None:
    server = await start_live_server(reliability_settings)
    try:
        user = await new_user(server.auth)

        async def refresh() -> tuple[grpc.StatusCode, str]:
            try:
                await server.auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=user.refresh_token))
            except grpc.aio.AioRpcError as error:
                return error.code(), failure_of(error).reason
            return grpc.StatusCode.OK, ""

        outcomes = await asyncio.gather(*(refresh() for _ in range(REFRESHES)))
        codes = Counter(code for code, _ in outcomes)
        assert codes == {grpc.StatusCode.OK: 1, grpc.StatusCode.UNAUTHENTICATED: REFRESHES - 1}, outcomes
        assert {reason for code, reason in outcomes if code != grpc.StatusCode.OK} <= {
            "REFRESH_TOKEN_REUSED", "REFRESH_TOKEN_REVOKED"}
    finally:
        await server.stop()
