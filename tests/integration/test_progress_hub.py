"""The progress hub on a real Redis restart: a watcher is told to read the database again once the
subscription is made again, because pub/sub kept nothing published while the hub was away."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis

from pixelcheck.analysis.progress import RESYNC, ProgressEvent, ProgressHub, ProgressPublisher
from pixelcheck.embedded_redis import EmbeddedRedis
from pixelcheck.keys import RedisKeys


def event(image_id: str, state: str = "RUNNING", stage: str = "DECODING") -> ProgressEvent:
    return ProgressEvent(image_id=image_id, state=state, stage=stage, progress=0.1, message="",
                         event_time="2026-01-01T00:00:00+00:00")


async def next_event(queue: asyncio.Queue[ProgressEvent | None], publish: ProgressPublisher,
                     sent: ProgressEvent) -> ProgressEvent | None:
    """Publish `sent` until the queue has something (the subscription may still be being made)."""
    for _ in range(100):
        await asyncio.to_thread(publish.publish, sent)
        try:
            return await asyncio.wait_for(queue.get(), 0.1)
        except TimeoutError:
            continue
    raise AssertionError("the hub never delivered an event")


async def test_after_a_redis_restart_every_watcher_is_told_to_read_the_database_again(tmp_path: Path) -> None:
    keys = RedisKeys("hub-test")
    broker = EmbeddedRedis(tmp_path / "redis").start()
    port = broker.port
    hub = ProgressHub(broker.url, keys)
    client = redis.Redis.from_url(broker.url, socket_connect_timeout=1)
    publish = ProgressPublisher(client, keys)
    try:
        async with hub.watch("img-1") as queue:
            assert await next_event(queue, publish, event("img-1")) == event("img-1")

            await asyncio.to_thread(broker.stop)
            # Published while the hub is away: lost, as pub/sub loses it.
            publish.publish(event("img-1", "SUCCEEDED", "DONE"))
            broker = await asyncio.to_thread(EmbeddedRedis(tmp_path / "redis", port=port).start)

            assert await asyncio.wait_for(queue.get(), 15) is RESYNC
            # ... and the new subscription delivers what is published from now on.
            later = event("img-1", "RUNNING", "FUSION")
            assert await next_event(queue, publish, later) == later
    finally:
        await hub.close()
        client.close()
        broker.stop()
