"""Sign-in throttling end to end: one client cannot lock others out (the NAT scenario), per-login backoff,
per-address limit on failures only, x-forwarded-for believed only from trusted proxies, several servers
sharing one Redis.

Clients all connect from 127.0.0.1; tests that need several addresses trust 127.0.0.1 as a proxy and
name the client in x-forwarded-for, the way a load balancer does.
"""

from __future__ import annotations

import asyncio
import secrets

import grpc
from pixelcheck.v1 import auth_pb2
from sqlalchemy import select

from pixelcheck.audit.models import AuditEvent
from pixelcheck.iam.service import SIGN_IN_THROTTLED
from pixelcheck.settings import Settings
from tests.e2e.flows import PASSWORD, Failure, fails, new_user, sign_in, unique_username
from tests.e2e.servers import LiveServer, start_live_server

WRONG = "definitely-wrong-9"
LOCALHOST_IS_A_PROXY = "127.0.0.1/32"


def lockout_settings(base_settings: Settings, **overrides: object) -> Settings:
    # A key prefix of its own: failures here must not lock other modules' servers (same peer 127.0.0.1).
    values: dict[str, object] = {"signin_max_failures": 5, "signin_login_max_failures": 20,
                                 "signin_address_max_failures": 100}
    values.update(overrides)
    return base_settings.with_overrides(redis_key_prefix=f"{base_settings.redis_key_prefix}-lock-"
                                        f"{secrets.token_hex(3)}", **values)


def sign_in_from(server: LiveServer, login: str, password: str, address: str) -> object:
    """SignIn as relayed by a proxy for a client at address."""
    return server.auth.SignIn(auth_pb2.SignInRequest(login=login, password=password),
                              metadata=(("x-forwarded-for", address),))


def assert_throttled(failure: Failure, rule: str) -> None:
    assert failure.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failure.reason == "TOO_MANY_SIGNIN_ATTEMPTS"
    assert failure.info.metadata["rule"] == rule
    assert failure.retry_delay_seconds is not None and failure.retry_delay_seconds > 0


async def test_five_failures_lock_the_login_from_that_address_with_retry_info(base_settings, migrated_database_url):
    server = await start_live_server(lockout_settings(base_settings))
    try:
        user = await new_user(server.auth)
        for _ in range(5):
            failure = await fails(sign_in(server.auth, user.username, WRONG))
            assert failure.code is grpc.StatusCode.UNAUTHENTICATED
        locked = await fails(sign_in(server.auth, user.username, PASSWORD))  # even the right password
        assert_throttled(locked, "login_address")
        assert 880 < locked.retry_delay_seconds <= 900  # type: ignore[operator]
    finally:
        await server.stop()


async def test_behind_one_nat_a_mistyping_user_locks_out_nobody_else(base_settings, migrated_database_url):
    server = await start_live_server(lockout_settings(base_settings, trusted_proxies=LOCALHOST_IS_A_PROXY))
    try:
        mistyper, colleague = await new_user(server.auth), await new_user(server.auth)
        office = "198.51.100.20"
        for _ in range(5):
            await fails(sign_in_from(server, mistyper.username, WRONG, office))
        assert_throttled(await fails(sign_in_from(server, mistyper.username, PASSWORD, office)), "login_address")
        # Everybody else behind the same address signs in with the right password ...
        assert (await sign_in_from(server, colleague.username, PASSWORD, office)).user.id == colleague.user.id
        for _ in range(3):
            stranger = await new_user(server.auth)
            assert (await sign_in_from(server, stranger.username, PASSWORD, office)).user.id == stranger.user.id
        # ... and so does the mistyper from another address.
        home = await sign_in_from(server, mistyper.username, PASSWORD, "203.0.113.5")
        assert home.user.id == mistyper.user.id
    finally:
        await server.stop()


async def test_many_addresses_failing_one_login_get_an_exponential_delay(base_settings, migrated_database_url):
    server = await start_live_server(lockout_settings(
        base_settings, trusted_proxies=LOCALHOST_IS_A_PROXY, signin_login_max_failures=6,
        signin_login_delay_seconds=0.5, signin_login_max_delay_seconds=30))
    try:
        victim, bystander = await new_user(server.auth), await new_user(server.auth)
        familiar = "192.0.2.44"
        await sign_in_from(server, victim.username, PASSWORD, familiar)  # the owner's usual address
        for n in range(6):  # a distributed guesser: one failure per address
            failure = await fails(sign_in_from(server, victim.username, WRONG, f"198.51.100.{n}"))
            assert failure.code is grpc.StatusCode.UNAUTHENTICATED
        first = await fails(sign_in_from(server, victim.username, WRONG, "198.51.100.50"))
        assert_throttled(first, "login")
        assert first.retry_delay_seconds <= 0.5  # type: ignore[operator]
        await asyncio.sleep(first.retry_delay_seconds + 0.05)  # type: ignore[operator]
        await fails(sign_in_from(server, victim.username, WRONG, "198.51.100.51"))
        second = await fails(sign_in_from(server, victim.username, WRONG, "198.51.100.52"))
        assert_throttled(second, "login")
        assert 0.5 < second.retry_delay_seconds <= 1.0  # type: ignore[operator]  # doubled
        # The owner from a familiar address and other logins are not held up.
        assert (await sign_in_from(server, victim.username, PASSWORD, familiar)).user.id == victim.user.id
        assert (await sign_in_from(server, bystander.username, PASSWORD, "198.51.100.53")).user.id == \
            bystander.user.id
        server.container.audit_recorder.flush()
        with server.container.read_sessions.begin() as session:
            rules = {e.payload["rule"] for e in session.scalars(select(AuditEvent).where(
                AuditEvent.action == SIGN_IN_THROTTLED)) if e.payload.get("login") == victim.username}
        assert rules == {"login"}
    finally:
        await server.stop()


async def test_an_address_over_its_limit_has_failures_refused_but_right_passwords_accepted(
        base_settings, migrated_database_url):
    server = await start_live_server(lockout_settings(base_settings, signin_address_max_failures=8))
    try:
        user = await new_user(server.auth)
        for _ in range(8):  # eight different logins from one address: no pair reaches its limit
            failure = await fails(sign_in(server.auth, unique_username("ghost"), WRONG))
            assert failure.code is grpc.StatusCode.UNAUTHENTICATED
        assert_throttled(await fails(sign_in(server.auth, unique_username("ghost"), WRONG)), "address")
        assert_throttled(await fails(sign_in(server.auth, user.username, WRONG)), "address")
        assert (await sign_in(server.auth, user.username, PASSWORD)).user.id == user.user.id
    finally:
        await server.stop()


async def test_a_spoofed_forwarded_for_is_ignored_without_trusted_proxies(base_settings, migrated_database_url):
    server = await start_live_server(lockout_settings(base_settings))
    try:
        user = await new_user(server.auth)
        for n in range(5):  # a fresh "address" every time: all of them the peer 127.0.0.1 really
            await fails(sign_in_from(server, user.username, WRONG, f"203.0.113.{n}"))
        assert_throttled(await fails(sign_in_from(server, user.username, PASSWORD, "203.0.113.99")),
                         "login_address")
    finally:
        await server.stop()


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(base_settings, migrated_database_url):
    server = await start_live_server(lockout_settings(base_settings, trusted_proxies=LOCALHOST_IS_A_PROXY))
    try:
        user = await new_user(server.auth)
        for n in range(5):  # the client adds made-up addresses on the left; the proxy appends the real one
            await fails(sign_in_from(server, user.username, WRONG, f"10.9.9.{n}, 198.51.100.7"))
        assert_throttled(await fails(sign_in_from(server, user.username, PASSWORD, "198.51.100.7")),
                         "login_address")
        elsewhere = await sign_in_from(server, user.username, PASSWORD, "198.51.100.8")
        assert elsewhere.user.id == user.user.id
    finally:
        await server.stop()


async def test_the_lock_ends_when_the_window_passes(base_settings, migrated_database_url):
    server = await start_live_server(lockout_settings(base_settings, signin_window_seconds=2))
    try:
        user = await new_user(server.auth)
        for _ in range(5):
            await fails(sign_in(server.auth, user.username, WRONG))
        locked = await fails(sign_in(server.auth, user.username, PASSWORD))
        assert_throttled(locked, "login_address")
        assert locked.retry_delay_seconds <= 2  # type: ignore[operator]
        await asyncio.sleep(locked.retry_delay_seconds + 0.2)  # type: ignore[operator]
        signed_in = await sign_in(server.auth, user.username, PASSWORD)
        assert signed_in.user.id == user.user.id
    finally:
        await server.stop()


async def test_servers_sharing_redis_count_failures_together(base_settings, migrated_database_url):
    settings = lockout_settings(base_settings)
    first, second = await start_live_server(settings), await start_live_server(settings)
    try:
        user = await new_user(first.auth)
        for server in (first, first, first, second, second):
            await fails(sign_in(server.auth, user.username, WRONG))
        for server in (first, second):
            assert_throttled(await fails(sign_in(server.auth, user.username, PASSWORD)), "login_address")
    finally:
        await first.stop()
        await second.stop()
