"""Brute-force protection for sign-in that one client cannot turn against others. Three rules, in Redis:

- per (login, client address): `pair_max` failures within the window lock that pair only;
- per login, from any address: from `login_max` failures on, every further attempt must wait a delay that
  doubles with each failure (so a distributed guesser cannot grind one account). Addresses the login
  signed in from successfully before ("familiar" ones) are exempt, so its owner is not locked out;
- per client address, for any login: from `address_max` failures on, further *failed* attempts are answered
  RESOURCE_EXHAUSTED; a correct password from that address still signs in.

Redis (not process memory) holds the counters so that every server process sees the same failures; every
key expires by itself. Each counter is a sorted set of failure times, trimmed to the newest entries the
rule needs; entries older than the window are dropped before counting.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from pixelcheck.errors import TooLarge, Unavailable
from pixelcheck.keys import RedisKeys

RULE_LOGIN_ADDRESS = "login_address"
RULE_LOGIN = "login"
RULE_ADDRESS = "address"
_LOGIN_KEEP_EXTRA = 64  # login failures kept beyond the threshold: the delay is capped long before that


@dataclass(frozen=True)
class ThrottleLimits:
    pair_max: int = 5
    window_seconds: float = 900
    login_max: int = 20
    login_delay_seconds: float = 1.0
    login_max_delay_seconds: float = 900
    address_max: int = 100
    familiar_seconds: float = 30 * 24 * 3600


@dataclass(frozen=True)
class Attempt:
    """What the counters said before a sign-in attempt: needed to answer a failure."""

    address_wait_seconds: float  # > 0: the address is over its limit for this long


def throttled(rule: str, wait: float) -> TooLarge:
    """The RESOURCE_EXHAUSTED answer for rule, with the seconds to wait (ErrorInfo metadata names the rule)."""
    return TooLarge(f"Too many failed sign-ins; try again in {int(wait) + 1} seconds",
                    reason="TOO_MANY_SIGNIN_ATTEMPTS", retry_after_seconds=wait, metadata={"rule": rule})


class SigninThrottle:
    """Counts failed sign-ins per (login, address), per login and per address; see the module docstring."""

    def __init__(self, client: redis.Redis, keys: RedisKeys, limits: ThrottleLimits, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._keys = keys
        self._limits = limits
        self._clock = clock

    def _login_keys(self, login: str, address: str) -> tuple[str, str, str, str]:
        # Logins are hashed: Redis needs no copy of people's emails.
        digest = hashlib.sha256(login.strip().lower().encode()).hexdigest()[:32]
        address = address or "unknown"
        return (self._keys.signin_failures("pair", f"{digest}:{address}"),
                self._keys.signin_failures("login", digest),
                self._keys.signin_failures("address", address),
                self._keys.signin_familiar(digest))

    def before_attempt(self, *, login: str, address: str) -> Attempt:
        """Refuse an attempt the pair or the login rule forbids, before any password is checked.

        Raises TooLarge (RESOURCE_EXHAUSTED, reason TOO_MANY_SIGNIN_ATTEMPTS, metadata rule
        "login_address" or "login", with the seconds to wait); Unavailable when Redis is unreachable.
        """
        lim = self._limits
        now = self._clock()
        pair, per_login, per_address, familiar = self._login_keys(login, address)
        with _redis_errors():
            pipe = self._redis.pipeline(transaction=False)
            for key in (pair, per_login, per_address):
                pipe.zremrangebyscore(key, "-inf", now - lim.window_seconds)
                pipe.zcard(key)
            pipe.zrange(pair, -lim.pair_max, -lim.pair_max, withscores=True)
            pipe.zrange(per_login, -1, -1, withscores=True)
            pipe.zrange(per_address, -lim.address_max, -lim.address_max, withscores=True)
            pipe.zscore(familiar, address or "unknown")
            replies = pipe.execute()
        pair_count, login_count, address_count = replies[1], replies[3], replies[5]
        pair_edge, login_newest, address_edge, familiar_since = replies[6:10]
        if pair_count >= lim.pair_max and pair_edge:
            # The lock lifts when enough failures age out that fewer than pair_max remain.
            raise throttled(RULE_LOGIN_ADDRESS, pair_edge[0][1] + lim.window_seconds - now)
        is_familiar = familiar_since is not None and familiar_since > now - lim.familiar_seconds
        if login_count >= lim.login_max and login_newest and not is_familiar:
            delay = min(lim.login_delay_seconds * 2.0 ** min(login_count - lim.login_max, 64),
                        lim.login_max_delay_seconds)
            wait = login_newest[0][1] + delay - now
            if wait > 0:
                raise throttled(RULE_LOGIN, wait)
        address_wait = 0.0
        if address_count >= lim.address_max and address_edge:
            address_wait = max(0.0, address_edge[0][1] + lim.window_seconds - now)
        return Attempt(address_wait_seconds=address_wait)

    def failed(self, *, login: str, address: str, attempt: Attempt) -> None:
        """Count one failed sign-in against the pair, the login and the address.

        Raises TooLarge (metadata rule "address") when the address was already over its limit.
        """
        lim = self._limits
        now = self._clock()
        member = f"{now:.6f}:{uuid.uuid4().hex[:8]}"
        pair, per_login, per_address, _ = self._login_keys(login, address)
        with _redis_errors():
            pipe = self._redis.pipeline(transaction=False)
            for key, keep in ((pair, lim.pair_max), (per_login, lim.login_max + _LOGIN_KEEP_EXTRA),
                              (per_address, lim.address_max)):
                pipe.zadd(key, {member: now})
                pipe.zremrangebyrank(key, 0, -(keep + 1))
                pipe.expire(key, int(lim.window_seconds) + 1)
            pipe.execute()
        if attempt.address_wait_seconds > 0:
            raise throttled(RULE_ADDRESS, attempt.address_wait_seconds)

    def succeeded(self, *, login: str, address: str) -> None:
        """Forget the pair's failures and remember the address as familiar for the login.

        The login's and the address's counters stay: they count other people's failures too.
        """
        now = self._clock()
        pair, _, _, familiar = self._login_keys(login, address)
        with _redis_errors():
            pipe = self._redis.pipeline(transaction=False)
            pipe.delete(pair)
            pipe.zadd(familiar, {address or "unknown": now})
            pipe.zremrangebyscore(familiar, "-inf", now - self._limits.familiar_seconds)
            pipe.expire(familiar, int(self._limits.familiar_seconds) + 1)
            pipe.execute()


@contextmanager
def _redis_errors() -> Iterator[None]:
    # Failing closed: without the counters, sign-in could be brute-forced.
    try:
        yield
    except redis.RedisError as exc:
        raise Unavailable("Sign-in is unavailable right now; try again shortly",
                          reason="SIGNIN_THROTTLE_UNAVAILABLE", retry_after_seconds=2) from exc
