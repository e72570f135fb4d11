"""Sign-in throttling on a real Redis: per (login, address), per login with backoff, per address, expiry."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import pytest
import redis

from pixelcheck.errors import TooLarge
from pixelcheck.iam.lockout import Attempt, SigninThrottle, ThrottleLimits
from pixelcheck.keys import RedisKeys

WINDOW = 900
LIMITS = ThrottleLimits(pair_max=5, window_seconds=WINDOW, login_max=8, login_delay_seconds=2,
                        login_max_delay_seconds=60, address_max=12, familiar_seconds=3600)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(client: redis.Redis, redis_key_prefix: str, clock: Clock) -> SigninThrottle:
    keys = RedisKeys(f"{redis_key_prefix}-lockout-{secrets.token_hex(4)}")  # a namespace per test
    return SigninThrottle(client, keys, LIMITS, clock=clock)


def fail(throttle: SigninThrottle, times: int, *, login: str = "ada", address: str = "10.0.0.1") -> None:
    for _ in range(times):
        attempt = throttle.before_attempt(login=login, address=address)
        with contextlib.suppress(TooLarge):  # the address rule answers the failure; it is counted all the same
            throttle.failed(login=login, address=address, attempt=attempt)


def refusal(throttle: SigninThrottle, *, login: str = "ada", address: str = "10.0.0.1") -> TooLarge | None:
    try:
        throttle.before_attempt(login=login, address=address)
    except TooLarge as exc:
        assert exc.reason == "TOO_MANY_SIGNIN_ATTEMPTS"
        return exc
    return None


def test_four_failures_do_not_lock_the_pair_and_the_fifth_does(throttle):
    fail(throttle, 4)
    assert refusal(throttle) is None
    fail(throttle, 1)
    locked = refusal(throttle)
    assert locked is not None and locked.metadata["rule"] == "login_address"
    assert locked.retry_after_seconds == pytest.approx(WINDOW)


def test_a_locked_pair_leaves_the_login_elsewhere_and_the_address_for_others_alone(throttle):
    fail(throttle, 5)
    assert refusal(throttle, login="ADA") is not None  # logins compare case-insensitively
    assert refusal(throttle, address="10.0.0.2") is None
    assert refusal(throttle, login="bob") is None


def test_the_pair_lock_lifts_when_enough_failures_leave_the_window(throttle, clock):
    fail(throttle, 1)
    clock.now += 300
    fail(throttle, 4)
    assert refusal(throttle).retry_after_seconds == pytest.approx(WINDOW - 300)
    clock.now += WINDOW - 300 + 0.01  # the first failure ages out; four remain
    assert refusal(throttle) is None
    fail(throttle, 1)
    assert refusal(throttle).retry_after_seconds == pytest.approx(300, abs=0.1)


def test_many_addresses_failing_one_login_delay_it_exponentially(throttle, clock):
    for n in range(8):
        fail(throttle, 1, address=f"10.1.0.{n}")
    first = refusal(throttle, address="10.2.0.1")
    assert first is not None and first.metadata["rule"] == "login"
    assert first.retry_after_seconds == pytest.approx(2)
    clock.now += 2.01
    fail(throttle, 1, address="10.2.0.1")
    assert refusal(throttle, address="10.2.0.2").retry_after_seconds == pytest.approx(4)
    clock.now += 4.01
    fail(throttle, 1, address="10.2.0.2")
    assert refusal(throttle, address="10.2.0.3").retry_after_seconds == pytest.approx(8)
    assert refusal(throttle, login="bob", address="10.2.0.3") is None  # only that login


def test_the_login_delay_is_capped(throttle, clock):
    for n in range(8 + 20):
        clock.now += 61
        fail(throttle, 1, address=f"10.3.0.{n}")
    assert refusal(throttle, address="10.4.0.1").retry_after_seconds == pytest.approx(60)


def test_a_familiar_address_is_exempt_from_the_login_delay(throttle):
    throttle.succeeded(login="ada", address="192.0.2.7")
    for n in range(8):
        fail(throttle, 1, address=f"10.1.0.{n}")
    assert refusal(throttle, address="10.9.9.9") is not None
    assert refusal(throttle, address="192.0.2.7") is None


def test_an_address_over_its_limit_has_failures_refused_but_attempts_allowed(throttle):
    for n in range(12):
        fail(throttle, 1, login=f"user{n}")
    attempt = throttle.before_attempt(login="carol", address="10.0.0.1")  # no refusal before the password
    assert attempt.address_wait_seconds == pytest.approx(WINDOW)
    with pytest.raises(TooLarge) as refused:
        throttle.failed(login="carol", address="10.0.0.1", attempt=attempt)
    assert refused.value.metadata["rule"] == "address"
    throttle.failed(login="carol", address="10.0.0.2", attempt=Attempt(address_wait_seconds=0))


def test_success_clears_the_pair_but_not_the_login_or_address_counters(throttle, client):
    fail(throttle, 4)
    throttle.succeeded(login="ada", address="10.0.0.1")
    fail(throttle, 4)
    assert refusal(throttle) is None
    assert client.zcard(throttle._login_keys("ada", "10.0.0.1")[1]) == 8


def test_counters_expire_in_redis_with_the_window(throttle, client):
    fail(throttle, 1)
    keys = client.keys(f"{throttle._keys.prefix}:signin-failures:*")
    assert len(keys) == 3 and all(0 < client.ttl(k) <= WINDOW + 1 for k in keys)
    assert not any(b"ada" in k for k in keys)  # logins are stored hashed


def test_counters_keep_only_the_entries_their_rule_needs(throttle, client):
    for _ in range(30):
        throttle.failed(login="mallory", address="10.0.0.1", attempt=Attempt(address_wait_seconds=0))
    pair, login, address, _ = throttle._login_keys("mallory", "10.0.0.1")
    assert (client.zcard(pair), client.zcard(address)) == (5, 12)
    assert client.zcard(login) == 30
