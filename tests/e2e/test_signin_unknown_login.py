"""Sign-in does the same work for an unknown login as for a wrong password (production argon2 costs)."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import select, update

from pixelcheck.iam.models import User
from pixelcheck.iam.passwords import Passwords
from pixelcheck.settings import Settings
from tests.e2e.flows import fails, new_user, sign_in, unique_username


@pytest.fixture(scope="module")
def server_settings(base_settings: Settings, migrated_database_url: str) -> Settings:
    defaults = Settings()
    return base_settings.with_overrides(
        argon2_time_cost=defaults.argon2_time_cost, argon2_memory_cost_kib=defaults.argon2_memory_cost_kib,
        argon2_parallelism=defaults.argon2_parallelism, signin_max_failures=10_000,
        signin_address_max_failures=10_000,
        redis_key_prefix=f"{base_settings.redis_key_prefix}-timing")


async def test_unknown_login_costs_one_argon2_check_like_a_wrong_password(live_server, monkeypatch):
    # Equal time by construction: both paths run exactly one argon2 verification with the same costs.
    # (Measured, not asserted: scripts/bench/signin_latency.py times both cases in one run.)
    passwords = live_server.container.identity._passwords
    real_hasher = passwords._hasher
    verified: list[str] = []

    class CountingHasher:
        def __getattr__(self, name: str) -> object:
            return getattr(real_hasher, name)

        def verify(self, stored_hash: str, password: str) -> bool:
            verified.append(stored_hash)
            return real_hasher.verify(stored_hash, password)

    monkeypatch.setattr(passwords, "_hasher", CountingHasher())
    user = await new_user(live_server.auth)
    outcomes = {}
    for case, login in (("wrong password", user.username), ("unknown login", unique_username("ghost"))):
        verified.clear()
        failure = await fails(sign_in(live_server.auth, login, "wrong-password-1"))
        assert len(verified) == 1, case
        assert "m=19456,t=2,p=1" in verified[0], case  # production costs on both paths
        outcomes[case] = (failure.code, failure.reason, failure.message)
    assert outcomes["wrong password"] == outcomes["unknown login"]
    assert outcomes["unknown login"][:2] == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")


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
