"""Sign-in takes the same time for an unknown login as for a wrong password (production argon2 costs)."""

from __future__ import annotations

import statistics
import time

import grpc
import pytest
from sqlalchemy import select, update

from pixelcheck.iam.models import User
from pixelcheck.iam.passwords import Passwords
from pixelcheck.settings import Settings
from tests.e2e.flows import fails, new_user, sign_in, unique_username

ROUNDS = 15


@pytest.fixture(scope="module")
def server_settings(base_settings: Settings, migrated_database_url: str) -> Settings:
    defaults = Settings()
    return base_settings.with_overrides(
        argon2_time_cost=defaults.argon2_time_cost, argon2_memory_cost_kib=defaults.argon2_memory_cost_kib,
        argon2_parallelism=defaults.argon2_parallelism, signin_max_failures=10_000,
        redis_key_prefix=f"{base_settings.redis_key_prefix}-timing")


async def test_unknown_login_and_wrong_password_take_the_same_time(live_server):
    user = await new_user(live_server.auth)
    timings: dict[str, list[float]] = {"wrong password": [], "unknown login": []}
    for _ in range(ROUNDS):  # interleaved, so drift on a busy machine hits both alike
        for case, login in (("wrong password", user.username), ("unknown login", unique_username("ghost"))):
            started = time.perf_counter()
            failure = await fails(sign_in(live_server.auth, login, "wrong-password-1"))
            timings[case].append(time.perf_counter() - started)
            assert failure.code is grpc.StatusCode.UNAUTHENTICATED
            assert failure.reason == "INVALID_CREDENTIALS"
    wrong, unknown = (statistics.median(timings[c]) for c in ("wrong password", "unknown login"))
    assert wrong > 0.005, "argon2 with production costs takes milliseconds; is it really running?"
    assert 0.67 < unknown / wrong < 1.5, f"wrong password {wrong * 1000:.1f} ms, unknown login {unknown * 1000:.1f} ms"


async def test_a_hash_made_with_old_costs_is_upgraded_at_sign_in(live_server):
    user = await new_user(live_server.auth)
    old_hash = Passwords(time_cost=1, memory_cost_kib=1024, parallelism=1).hash(user.password)
    with live_server.container.sessions.begin() as session:
        session.execute(update(User).where(User.id == user.user.id).values(password_hash=old_hash))
    await sign_in(live_server.auth, user.username, user.password)
    with live_server.container.read_sessions.begin() as session:
        upgraded = session.scalars(select(User.password_hash).where(User.id == user.user.id)).one()
    assert upgraded != old_hash and "m=19456,t=2,p=1" in upgraded
    await sign_in(live_server.auth, user.username, user.password)
