"""The progress bus: workers publish each stage change on Redis pub/sub; servers fan them out to watchers.

One pattern subscription per server process feeds every WatchAnalysis stream (asyncio queues, no thread
per watcher), so hundreds of open streams cost one Redis connection. Pub/sub keeps nothing for a subscriber
that is away: each time the subscription is (re)made, every watcher's queue gets RESYNC, and the watcher
reads the database again instead of waiting for an event that was published while nobody listened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass

import redis
import redis.asyncio as aioredis

from pixelcheck.keys import RedisKeys

log = logging.getLogger("pixelcheck.progress")

STAGE_ORDER = ("QUEUED", "DECODING", "PROVENANCE", "PIXEL_MODEL", "FUSION", "SAVING", "DONE")
STAGE_PROGRESS = {"QUEUED": 0.0, "DECODING": 0.1, "PROVENANCE": 0.25, "PIXEL_MODEL": 0.45, "FUSION": 0.8,
                  "SAVING": 0.9, "DONE": 1.0}
STAGE_MESSAGES = {
    "QUEUED": "Waiting for a worker",
    "DECODING": "Decoding the image",
    "PROVENANCE": "Reading Content Credentials, generator metadata and camera data",
    "PIXEL_MODEL": "Examining the pixels for traces of image generators",
    "FUSION": "Weighing the evidence",
    "SAVING": "Saving the result",
    "DONE": "Analysis finished",
}
TERMINAL_STATES = ("SUCCEEDED", "FAILED")
RESYNC = None  # in a watcher's queue: events may have been missed; read the state from the database


def frames_message(done: int, total: int) -> str:
    """The pixel stage's message while an animation's frames are read."""
    return f"Examining the pixels of each frame: {done} of {total} frames"


@dataclass(frozen=True)
class ProgressEvent:
    image_id: str
    state: str
    stage: str
    progress: float
    message: str
    event_time: str  # ISO 8601, UTC
    attempt: int = 0

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> ProgressEvent:
        return cls(**json.loads(raw))


class ProgressPublisher:
    """Used by workers: publishing is best effort (the database holds the truth)."""

    def __init__(self, client: redis.Redis, keys: RedisKeys) -> None:
        self._client = client
        self._keys = keys

    def publish(self, event: ProgressEvent) -> None:
        try:
            self._client.publish(self._keys.analysis_channel(event.image_id), event.to_json())
        except redis.RedisError:
            log.warning("could not publish progress of %s", event.image_id, exc_info=True)


class ProgressHub:
    """Used by servers: one Redis pattern subscription, fanned out to per-watcher queues."""

    def __init__(self, redis_url: str, keys: RedisKeys) -> None:
        self._url = redis_url
        self._keys = keys
        self._watchers: dict[str, set[asyncio.Queue[ProgressEvent | None]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None

    async def _ensure_started(self) -> None:
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="progress-hub")
        assert self._ready is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=3)

    async def _run(self) -> None:
        delay = 0.2
        while True:
            client = aioredis.Redis.from_url(self._url, socket_connect_timeout=3)
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                await pubsub.psubscribe(self._keys.analysis_channel_pattern)
                assert self._ready is not None
                self._ready.set()
                delay = 0.2
                self._resync()
                async for message in pubsub.listen():
                    if message.get("type") == "pmessage":
                        self._dispatch(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("progress subscription lost; reconnecting in %.1fs", delay, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()

    def _dispatch(self, raw: bytes) -> None:
        try:
            event = ProgressEvent.from_json(raw)
        except (ValueError, TypeError):
            log.warning("ignoring a malformed progress message")
            return
        for queue in self._watchers.get(event.image_id, ()):
            queue.put_nowait(event)

    def _resync(self) -> None:
        for queues in self._watchers.values():
            for queue in queues:
                queue.put_nowait(RESYNC)

    @contextlib.asynccontextmanager
    async def watch(self, image_id: str) -> AsyncIterator[asyncio.Queue[ProgressEvent | None]]:
        """A queue of the image's events (RESYNC after the subscription was made again), registered before
        the caller reads its snapshot."""
        await self._ensure_started()
        queue: asyncio.Queue[ProgressEvent | None] = asyncio.Queue()
        self._watchers[image_id].add(queue)
        try:
            yield queue
        finally:
            watchers = self._watchers.get(image_id)
            if watchers is not None:
                watchers.discard(queue)
                if not watchers:
                    del self._watchers[image_id]

    @property
    def watcher_count(self) -> int:
        return sum(len(v) for v in self._watchers.values())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
