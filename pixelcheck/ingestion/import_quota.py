"""Per-user rate limit of ImportImage: each import costs the server a download, so a user gets `limit` of
them per window. Counted in Redis (one counter per user and window, expiring by itself), so every server
process shares the count."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from pixelcheck.errors import TooLarge, Unavailable
from pixelcheck.keys import RedisKeys


class ImportQuota:
    def __init__(self, client: redis.Redis, keys: RedisKeys, *, limit: int, window_seconds: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._keys = keys
        self._limit = limit
        self._window = window_seconds
        self._clock = clock

    def take(self, user_id: str) -> None:
        """Counts one import for user_id. Raises TooLarge (URL_IMPORT_RATE_LIMITED, with the seconds to wait)
        once the window's imports are used up, Unavailable when Redis cannot be reached."""
        now = self._clock()
        window = int(now // self._window)
        key = self._keys.url_imports(user_id, window)
        try:
            pipe = self._redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, self._window * 2)
            count = int(pipe.execute()[0])
        except redis.RedisError as exc:
            raise Unavailable("The import rate limiter is unreachable; try again shortly",
                              reason="RATE_LIMITER_UNAVAILABLE", retry_after_seconds=1.0) from exc
        if count > self._limit:
            wait = (window + 1) * self._window - now
            raise TooLarge(f"At most {self._limit} imports per {self._window} seconds; try again in "
                           f"{int(wait) + 1} seconds", reason="URL_IMPORT_RATE_LIMITED", retry_after_seconds=wait,
                           metadata={"limit": str(self._limit), "window_seconds": str(self._window)})
