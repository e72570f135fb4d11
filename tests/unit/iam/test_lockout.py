"""Sign-in throttling on a real Redis: the sliding window, per login and per peer, and its expiry."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import redis

from pixelcheck.errors import TooLarge
from pixelcheck.iam.lockout import SigninThrottle, peer_host
from pixelcheck.keys import RedisKeys

WINDOW = 900


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
    return SigninThrottle(client, keys, max_failures=5, window_seconds=WINDOW, clock=clock)


def fail(throttle: SigninThrottle, times: int, *, login: str = "ada", peer: str = "ipv4:10.0.0.1:5000") -> None:
    for _ in range(times):
        throttle.record_failure(login=login, peer=peer)


def locked_for(throttle: SigninThrottle, *, login: str = "ada", peer: str = "ipv4:10.0.0.1:5000") -> float | None:
    try:
        throttle.check(login=login, peer=peer)
    except TooLarge as exc:
        assert exc.reason == "TOO_MANY_SIGNIN_ATTEMPTS"
        return exc.retry_after_seconds
    return None


def test_four_failures_do_not_lock_and_the_fifth_does(throttle):
    fail(throttle, 4)
    assert locked_for(throttle) is None
    fail(throttle, 1)
    assert locked_for(throttle) == pytest.approx(WINDOW)


def test_a_login_is_locked_whatever_peer_it_comes_from(throttle):
    for port in range(5):
        throttle.record_failure(login="ada", peer=f"ipv4:10.0.0.{port}:5000")
    assert locked_for(throttle, login="ADA", peer="ipv4:192.168.1.1:6000") is not None  # case-insensitive


def test_a_peer_is_locked_whatever_login_it_tries(throttle):
    for n in range(5):
        throttle.record_failure(login=f"user{n}", peer=f"ipv4:10.0.0.1:{5000 + n}")  # port changes per connection
    assert locked_for(throttle, login="someone-else", peer="ipv4:10.0.0.1:7000") is not None
    assert locked_for(throttle, login="someone-else", peer="ipv4:10.0.0.2:7000") is None


def test_the_lock_lifts_when_enough_failures_leave_the_window(throttle, clock):
    fail(throttle, 1)
    clock.now += 300
    fail(throttle, 4)
    assert locked_for(throttle) == pytest.approx(WINDOW - 300)
    clock.now += WINDOW - 300 + 0.01  # the first failure ages out; four remain
    assert locked_for(throttle) is None
    fail(throttle, 1)
    assert locked_for(throttle) == pytest.approx(300, abs=0.1)


def test_a_successful_sign_in_clears_the_logins_failures_but_not_the_peers(throttle):
    fail(throttle, 4, peer="ipv4:10.0.0.9:1")
    throttle.clear_login("ada")
    fail(throttle, 1, peer="ipv4:10.0.0.9:2")
    assert locked_for(throttle, peer="ipv4:10.0.0.8:1") is None
    assert locked_for(throttle, login="bob", peer="ipv4:10.0.0.9:3") is not None


def test_counters_expire_in_redis_with_the_window(throttle, client, clock):
    fail(throttle, 1)
    keys = client.keys(f"{throttle._keys.prefix}:*")
    assert len(keys) == 2 and all(0 < client.ttl(k) <= WINDOW + 1 for k in keys)
    assert not any(b"ada" in k for k in keys)  # logins are stored hashed


@pytest.mark.parametrize("peer, host", [
    ("ipv4:127.0.0.1:51234", "127.0.0.1"),
    ("ipv6:[::1]:51234", "::1"),
    ("ipv6:[2001:db8::7]:443", "2001:db8::7"),
    ("unix:/tmp/socket", "unix:/tmp/socket"),
])
def test_peer_host_drops_the_port(peer, host):
    assert peer_host(peer) == host
