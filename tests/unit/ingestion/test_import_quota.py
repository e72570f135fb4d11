"""The per-user ImportImage rate limit against the real (embedded or given) Redis, with a controlled clock."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import redis

from pixelcheck.errors import TooLarge, Unavailable
from pixelcheck.ingestion.import_quota import ImportQuota
from pixelcheck.keys import RedisKeys


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0  # 40 s into a 60 s window (1_000_000 = 16_666 * 60 + 40)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def quota(client: redis.Redis, prefix: str, clock: Clock, limit: int = 3) -> ImportQuota:
    keys = RedisKeys(f"{prefix}-imports-{secrets.token_hex(4)}")
    return ImportQuota(client, keys, limit=limit, window_seconds=60, clock=clock)


def test_imports_over_the_limit_are_refused_with_the_wait_until_the_window_ends(
        client: redis.Redis, redis_key_prefix: str) -> None:
    clock = Clock()
    limiter = quota(client, redis_key_prefix, clock)
    for _ in range(3):
        limiter.take("alice")
    with pytest.raises(TooLarge) as refused:
        limiter.take("alice")
    assert refused.value.reason == "URL_IMPORT_RATE_LIMITED"
    assert refused.value.retry_after_seconds == pytest.approx(20.0)
    limiter.take("bob")  # another user has a count of their own


def test_the_next_window_starts_a_fresh_count(client: redis.Redis, redis_key_prefix: str) -> None:
    clock = Clock()
    limiter = quota(client, redis_key_prefix, clock, limit=1)
    limiter.take("alice")
    with pytest.raises(TooLarge):
        limiter.take("alice")
    clock.now += 20.0
    limiter.take("alice")


def test_an_unreachable_redis_is_unavailable_not_unlimited(redis_key_prefix: str) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    with pytest.raises(Unavailable) as refused:
        quota(dead, redis_key_prefix, Clock()).take("alice")
    assert refused.value.reason == "RATE_LIMITER_UNAVAILABLE"
