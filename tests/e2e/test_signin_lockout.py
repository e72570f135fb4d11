"""Brute-force protection end to end: 5 failures per login or peer lock sign-in until the window passes,
across several server processes sharing one Redis."""

from __future__ import annotations

import asyncio
import secrets

import grpc

from pixelcheck.settings import Settings
from tests.e2e.flows import PASSWORD, fails, new_user, sign_in, unique_username
from tests.e2e.servers import start_live_server

WRONG = "definitely-wrong-9"


def lockout_settings(base_settings: Settings, **overrides: object) -> Settings:
    # A key prefix of its own: failures here must not lock other modules' servers (same peer 127.0.0.1).
    return base_settings.with_overrides(redis_key_prefix=f"{base_settings.redis_key_prefix}-lock-"
                                        f"{secrets.token_hex(3)}", signin_max_failures=5, **overrides)


async def test_five_failures_for_a_login_lock_it_with_retry_info(base_settings, migrated_database_url):
    server = await start_live_server(lockout_settings(base_settings))
    try:
        user = await new_user(server.auth)
        for _ in range(5):
            failure = await fails(sign_in(server.auth, user.username, WRONG))
            assert failure.code is grpc.StatusCode.UNAUTHENTICATED
        locked = await fails(sign_in(server.auth, user.username, PASSWORD))  # even the right password
        assert locked.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert locked.reason == "TOO_MANY_SIGNIN_ATTEMPTS"
        assert locked.retry_delay_seconds is not None and 880 < locked.retry_delay_seconds <= 900
    finally:
        await server.stop()


async def test_failures_across_logins_from_one_peer_lock_the_peer(base_settings, migrated_database_url):
    server = await start_live_server(lockout_settings(base_settings))
    try:
        user = await new_user(server.auth)
        for _ in range(5):
            await fails(sign_in(server.auth, unique_username("ghost"), WRONG))
        locked = await fails(sign_in(server.auth, user.username, PASSWORD))
        assert locked.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert locked.reason == "TOO_MANY_SIGNIN_ATTEMPTS"
    finally:
        await server.stop()


async def test_the_lock_ends_when_the_window_passes(base_settings, migrated_database_url):
    server = await start_live_server(lockout_settings(base_settings, signin_window_seconds=2))
    try:
        user = await new_user(server.auth)
        for _ in range(5):
            await fails(sign_in(server.auth, user.username, WRONG))
        locked = await fails(sign_in(server.auth, user.username, PASSWORD))
        assert locked.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert locked.retry_delay_seconds is not None and 0 < locked.retry_delay_seconds <= 2
        await asyncio.sleep(locked.retry_delay_seconds + 0.2)
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
            locked = await fails(sign_in(server.auth, user.username, PASSWORD))
            assert locked.code is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert locked.reason == "TOO_MANY_SIGNIN_ATTEMPTS"
    finally:
        await first.stop()
        await second.stop()
