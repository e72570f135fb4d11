"""Brute-force protection for sign-in: failures per login and per peer in a sliding window, kept in Redis.

Redis (not process memory) holds the counters so that every server process sees the same failures.
Each counter is a sorted set of failure times; entries older than the window are dropped before counting.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from pixelcheck.errors import TooLarge, Unavailable
from pixelcheck.keys import RedisKeys


def peer_host(peer: str) -> str:
    """The address part of a gRPC peer string ("ipv4:10.0.0.1:5123" -> "10.0.0.1", "ipv6:[::1]:5" -> "::1").

    The port changes with every connection, so counting per peer must ignore it.
    """
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or rest
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]") or rest
    return peer


class SigninThrottle:
    """Counts failed sign-ins per login and per peer; refuses sign-in while either reached the limit."""

    def __init__(self, client: redis.Redis, keys: RedisKeys, *, max_failures: int, window_seconds: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._keys = keys
        self._max = max_failures
        self._window = window_seconds
        self._clock = clock

    def _counters(self, login: str, peer: str) -> list[str]:
        # Logins are hashed: Redis needs no copy of people's emails.
        login_digest = hashlib.sha256(login.strip().lower().encode()).hexdigest()[:32]
        counters = [self._keys.signin_failures("login", login_digest)]
        if peer:
            counters.append(self._keys.signin_failures("peer", peer_host(peer)))
        return counters

    def check(self, *, login: str, peer: str) -> None:
        """Raises TooLarge (RESOURCE_EXHAUSTED, reason TOO_MANY_SIGNIN_ATTEMPTS, with the seconds to wait)
        when the login or the peer has max_failures failures within the window."""
        now = self._clock()
        with _redis_errors():
            pipe = self._redis.pipeline(transaction=True)
            for key in self._counters(login, peer):
                pipe.zremrangebyscore(key, "-inf", now - self._window)
                pipe.zrange(key, 0, -1, withscores=True)
            replies = pipe.execute()
        wait = 0.0
        for entries in replies[1::2]:
            if len(entries) >= self._max:
                # The lock lifts when enough failures age out that fewer than max_failures remain.
                oldest_that_must_expire = entries[len(entries) - self._max][1]
                wait = max(wait, oldest_that_must_expire + self._window - now)
        if wait > 0:
            raise TooLarge(f"Too many failed sign-ins; try again in {int(wait) + 1} seconds",
                           reason="TOO_MANY_SIGNIN_ATTEMPTS", retry_after_seconds=wait)

    def record_failure(self, *, login: str, peer: str) -> None:
        """Count one failed sign-in against both the login and the peer."""
        now = self._clock()
        member = f"{now:.6f}:{uuid.uuid4().hex[:8]}"
        with _redis_errors():
            pipe = self._redis.pipeline(transaction=True)
            for key in self._counters(login, peer):
                pipe.zadd(key, {member: now})
                pipe.expire(key, self._window + 1)
            pipe.execute()

    def clear_login(self, login: str) -> None:
        """Forget the login's failures after a successful sign-in (the peer's failures stay)."""
        with _redis_errors():
            self._redis.delete(self._counters(login, "")[0])


@contextmanager
def _redis_errors() -> Iterator[None]:
    # Failing closed: without the counters, sign-in could be brute-forced.
    try:
        yield
    except redis.RedisError as exc:
        raise Unavailable("Sign-in is unavailable right now; try again shortly",
                          reason="SIGNIN_THROTTLE_UNAVAILABLE", retry_after_seconds=2) from exc
