"""Steps the reliability scenarios repeat: uploads that report their status code instead of raising,
waiting on analyses in the database, and listening to the progress bus."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import grpc
import redis.asyncio as aioredis
from grpc import aio
from pixelcheck.v1 import ingestion_pb2
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.analysis.models import Analysis
from pixelcheck.analysis.progress import ProgressEvent
from pixelcheck.keys import RedisKeys
from pixelcheck.settings import Settings
from tests import images
from tests.e2e.uploads import Metadata, upload

TERMINAL = ("SUCCEEDED", "FAILED")


@dataclass(frozen=True)
class UploadOutcome:
    code: grpc.StatusCode
    image_id: str = ""
    duplicate: bool = False


async def try_upload(channel: aio.Channel, metadata: Metadata, data: bytes, filename: str = "photo.jpg",
                     **options: object) -> UploadOutcome:
    """Upload data; the status code (and the image on OK) instead of an exception."""
    try:
        response: ingestion_pb2.UploadImageResponse = await upload(channel, metadata, data, filename, **options)
    except aio.AioRpcError as error:
        return UploadOutcome(error.code())
    return UploadOutcome(grpc.StatusCode.OK, response.image.id, response.duplicate)


def small_jpegs(count: int, seed: int) -> list[bytes]:
    """count distinct small JPEGs (quick to analyse, so scenarios stay short)."""
    return [images.jpeg(256, 192, seed=seed + i) for i in range(count)]


def analysis_states(sessions: sessionmaker[Session], image_ids: Iterable[str]) -> dict[str, tuple[str, int]]:
    """image id -> (state, attempts), for the ids that have an analysis row."""
    ids = list(image_ids)
    with sessions() as session:
        rows = session.execute(select(Analysis.image_id, Analysis.state, Analysis.attempts)
                               .where(Analysis.image_id.in_(ids))).all()
    return {image_id: (state, attempts) for image_id, state, attempts in rows}


async def wait_until_finished(sessions: sessionmaker[Session], image_ids: Iterable[str],
                              timeout: float) -> dict[str, tuple[str, int]]:
    """The states once every analysis is SUCCEEDED or FAILED, or whatever they are when timeout passed."""
    ids = list(image_ids)
    deadline = time.monotonic() + timeout
    while True:
        states = await asyncio.to_thread(analysis_states, sessions, ids)
        done = all(states.get(i, ("", 0))[0] in TERMINAL for i in ids)
        if done or time.monotonic() > deadline:
            return states
        await asyncio.sleep(0.25)


def count_states(states: dict[str, tuple[str, int]]) -> Counter[str]:
    return Counter(state for state, _ in states.values())


class TerminalEvents:
    """Counts the terminal events the workers publish on the progress bus, per image."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    async def wait_for(self, image_ids: Iterable[str], timeout: float = 30.0) -> None:
        """Return once every image has had at least one terminal event (they may be in flight on the bus
        after the database says the analysis is done), or when timeout has passed."""
        ids = list(image_ids)
        deadline = time.monotonic() + timeout
        while any(self.counts[i] == 0 for i in ids) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def terminal_events(settings: Settings) -> AsyncIterator[TerminalEvents]:
    """Listens to every analysis channel of settings' namespace while the block runs."""
    found = TerminalEvents()
    client = aioredis.Redis.from_url(settings.redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.psubscribe(RedisKeys(settings.redis_key_prefix).analysis_channel_pattern)

    async def listen() -> None:
        async for message in pubsub.listen():
            if message.get("type") == "pmessage":
                event = ProgressEvent.from_json(message["data"])
                if event.terminal:
                    found.counts[event.image_id] += 1

    task = asyncio.create_task(listen())
    try:
        yield found
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await pubsub.aclose()
        await client.aclose()
