"""AuthService end to end through real stubs: accounts, sessions (refresh, sign-out), roles, errors."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import grpc
import jwt
import pytest
from grpc import aio
from pixelcheck.v1 import auth_pb2, common_pb2
from sqlalchemy import select, update

from pixelcheck.audit import actions
from pixelcheck.audit.models import AuditEvent
from pixelcheck.db import utcnow
from pixelcheck.iam.models import RefreshToken
from pixelcheck.observability import RequestIdFilter
from tests.e2e.flows import (
    PASSWORD,
    bearer,
    fails,
    failure_of,
    new_admin,
    new_user,
    sign_in,
    sign_up,
    unique_username,
)

ME = auth_pb2.GetCurrentUserRequest()
BOUND_SLACK_SECONDS = 3.0  # beyond the refresh interval, for a loaded test machine


def claims_of(access_token: str) -> dict:
    # Reading, not verifying: the server verified it; the test only looks inside.
    return jwt.decode(access_token, options={"verify_signature": False})


# -- sign-up, sign-in, current user -----------------------------------------------------------------
async def test_sign_up_then_sign_in_then_get_current_user_returns_the_account(live_server):
    auth = live_server.auth
    username = unique_username()
    created = await sign_up(auth, username, email=f"{username}@Example.ORG")
    assert created.roles == [common_pb2.ROLE_USER]
    assert created.email == f"{username}@example.org"  # stored lower-cased
    assert len(created.id) == 32 and created.create_time.seconds > 0

    signed_in = await sign_in(auth, username)
    assert signed_in.token_type == "Bearer"
    assert signed_in.expires_in_seconds == 900
    assert signed_in.user == created
    claims = claims_of(signed_in.access_token)
    assert claims["sub"] == created.id and claims["roles"] == ["USER"] and claims["typ"] == "access"
    assert {"iat", "nbf", "exp", "iss", "aud", "jti"} <= claims.keys()

    me = await auth.GetCurrentUser(ME, metadata=bearer(signed_in.access_token))
    assert me.user == created


async def test_sign_in_accepts_the_email_in_any_case(live_server):
    user = await new_user(live_server.auth)
    signed_in = await sign_in(live_server.auth, f"{user.username}@EXAMPLE.org")
    assert signed_in.user.id == user.user.id


async def test_sign_up_reports_every_bad_field_in_one_bad_request(live_server):
    failure = await fails(live_server.auth.SignUp(auth_pb2.SignUpRequest(
        username="No Spaces!", email="not-an-email", password="short", display_name="x" * 129)))
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "INVALID_ARGUMENT"
    assert set(failure.field_violations) == {"username", "email", "password", "display_name"}


@pytest.mark.parametrize("password, why", [
    ("qwertyuiop", "too common"),
    ("Password123", "too common"),
    ("aaaaaaaaaaaaaa", "too common"),
    ("{username}", "must not be the username"),
])
async def test_sign_up_refuses_guessable_passwords(live_server, password, why):
    username = unique_username()
    failure = await fails(live_server.auth.SignUp(auth_pb2.SignUpRequest(
        username=username, email=f"{username}@example.org", password=password.format(username=username))))
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert why in failure.field_violations["password"]


async def test_sign_up_with_a_taken_username_is_already_exists(live_server):
    user = await new_user(live_server.auth)
    failure = await fails(sign_up(live_server.auth, user.username, email="someone-else@example.org"))
    assert failure.code is grpc.StatusCode.ALREADY_EXISTS
    assert failure.reason == "USERNAME_TAKEN"


async def test_sign_up_with_a_taken_email_in_another_case_is_already_exists(live_server):
    user = await new_user(live_server.auth)
    failure = await fails(sign_up(live_server.auth, email=f"{user.username.upper()}@EXAMPLE.ORG"))
    assert failure.code is grpc.StatusCode.ALREADY_EXISTS
    assert failure.reason == "EMAIL_TAKEN"


async def test_wrong_password_and_unknown_login_fail_alike(live_server):
    user = await new_user(live_server.auth)
    wrong_password = await fails(sign_in(live_server.auth, user.username, "not-the-password-1"))
    unknown_login = await fails(sign_in(live_server.auth, unique_username("ghost"), "not-the-password-1"))
    for failure in (wrong_password, unknown_login):
        assert failure.code is grpc.StatusCode.UNAUTHENTICATED
        assert failure.reason == "INVALID_CREDENTIALS"
    assert wrong_password.message == unknown_login.message


async def test_sign_in_without_login_or_password_is_invalid_argument(live_server):
    failure = await fails(live_server.auth.SignIn(auth_pb2.SignInRequest()))
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.field_violations) == {"login", "password"}


async def test_public_methods_ignore_a_stale_token(live_server):
    user = await new_user(live_server.auth)
    signed_in = await live_server.auth.SignIn(auth_pb2.SignInRequest(login=user.username, password=PASSWORD),
                                              metadata=bearer("garbage"))
    assert signed_in.user.id == user.user.id


# -- refresh and sign-out ---------------------------------------------------------------------------
async def test_refresh_rotates_the_pair_and_the_new_access_token_works(live_server):
    auth = live_server.auth
    user = await new_user(auth)
    rotated = await auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=user.refresh_token))
    assert rotated.refresh_token != user.refresh_token
    assert rotated.access_token != user.access_token
    assert rotated.token_type == "Bearer" and rotated.expires_in_seconds == 900
    me = await auth.GetCurrentUser(ME, metadata=bearer(rotated.access_token))
    assert me.user.id == user.user.id
    again = await auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=rotated.refresh_token))
    assert again.refresh_token not in (user.refresh_token, rotated.refresh_token)


async def test_reusing_a_retired_refresh_token_revokes_the_whole_family(live_server):
    auth = live_server.auth
    user = await new_user(auth)
    rotated = await auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=user.refresh_token))

    reuse = await fails(auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=user.refresh_token)))
    assert reuse.code is grpc.StatusCode.UNAUTHENTICATED
    assert reuse.reason == "REFRESH_TOKEN_REUSED"
    # The thief's or the owner's newer token is dead too: the session is over.
    newer = await fails(auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=rotated.refresh_token)))
    assert newer.code is grpc.StatusCode.UNAUTHENTICATED
    assert newer.reason == "REFRESH_TOKEN_REVOKED"
    # Other sessions of the same user are untouched.
    other = await sign_in(auth, user.username)
    await auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=other.refresh_token))


async def test_refresh_with_an_unknown_or_empty_token_is_rejected(live_server):
    unknown = await fails(live_server.auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token="nope")))
    assert unknown.code is grpc.StatusCode.UNAUTHENTICATED
    assert unknown.reason == "REFRESH_TOKEN_INVALID"
    empty = await fails(live_server.auth.RefreshToken(auth_pb2.RefreshTokenRequest()))
    assert empty.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "refresh_token" in empty.field_violations


async def test_an_expired_refresh_token_is_rejected(live_server):
    user = await new_user(live_server.auth)
    with live_server.container.sessions.begin() as session:
        session.execute(update(RefreshToken).where(RefreshToken.user_id == user.user.id)
                        .values(expire_time=utcnow() - timedelta(seconds=1)))
    failure = await fails(live_server.auth.RefreshToken(
        auth_pb2.RefreshTokenRequest(refresh_token=user.refresh_token)))
    assert failure.code is grpc.StatusCode.UNAUTHENTICATED
    assert failure.reason == "REFRESH_TOKEN_EXPIRED"


async def test_sign_out_revokes_the_family_and_is_idempotent(live_server):
    auth = live_server.auth
    user = await new_user(auth)
    rotated = await auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=user.refresh_token))
    await auth.SignOut(auth_pb2.SignOutRequest(refresh_token=rotated.refresh_token), metadata=user.metadata)
    failure = await fails(auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=rotated.refresh_token)))
    assert failure.code is grpc.StatusCode.UNAUTHENTICATED
    assert failure.reason == "REFRESH_TOKEN_REVOKED"
    await auth.SignOut(auth_pb2.SignOutRequest(refresh_token=rotated.refresh_token), metadata=user.metadata)


async def test_sign_out_needs_an_access_token_and_the_callers_own_session(live_server):
    auth = live_server.auth
    alice, bob = await new_user(auth, "alice"), await new_user(auth, "bob")
    anonymous = await fails(auth.SignOut(auth_pb2.SignOutRequest(refresh_token=alice.refresh_token)))
    assert anonymous.code is grpc.StatusCode.UNAUTHENTICATED
    assert anonymous.reason == "MISSING_CREDENTIALS"
    foreign = await fails(auth.SignOut(auth_pb2.SignOutRequest(refresh_token=alice.refresh_token),
                                       metadata=bob.metadata))
    assert foreign.code is grpc.StatusCode.NOT_FOUND
    assert foreign.reason == "REFRESH_TOKEN_NOT_FOUND"
    await auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=alice.refresh_token))


# -- roles ------------------------------------------------------------------------------------------
def roles_request(user_id: str, *roles: int) -> auth_pb2.SetUserRolesRequest:
    return auth_pb2.SetUserRolesRequest(user_id=user_id, roles=list(roles))


async def test_a_user_cannot_set_roles(live_server):
    user = await new_user(live_server.auth)
    failure = await fails(live_server.auth.SetUserRoles(
        roles_request(user.user.id, common_pb2.ROLE_PROFESSIONAL), metadata=user.metadata))
    assert failure.code is grpc.StatusCode.PERMISSION_DENIED
    assert failure.reason == "ROLE_REQUIRED"
    assert failure.info.metadata["required_roles"] == "ADMIN"


async def test_an_admin_grants_professional_and_the_next_refresh_carries_it(live_server):
    auth = live_server.auth
    admin, user = await new_admin(live_server), await new_user(auth)
    changed = await auth.SetUserRoles(
        roles_request(user.user.id, common_pb2.ROLE_USER, common_pb2.ROLE_PROFESSIONAL), metadata=admin.metadata)
    assert list(changed.user.roles) == [common_pb2.ROLE_PROFESSIONAL, common_pb2.ROLE_USER]
    rotated = await auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=user.refresh_token))
    assert claims_of(rotated.access_token)["roles"] == ["PROFESSIONAL", "USER"]

    live_server.container.audit_recorder.flush()
    with live_server.container.read_sessions.begin() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == actions.ROLES_CHANGED,
                                                         AuditEvent.target == f"user:{user.user.id}")).one()
    assert event.actor_id == admin.user.id
    assert event.payload == {"before": ["USER"], "after": ["PROFESSIONAL", "USER"]}


async def test_after_a_role_change_the_old_token_is_outdated_and_a_refreshed_one_shows_the_new_roles(live_server):
    """The contract: a role change bumps the account's token version. Until this server's revocation cache
    has read it (one refresh interval), the old token is still accepted but never shows the old roles;
    then it is refused with TOKEN_OUTDATED. A refreshed token shows the new roles at once."""
    auth = live_server.auth
    admin, user = await new_admin(live_server), await new_user(auth)
    before = await auth.GetCurrentUser(ME, metadata=user.metadata)  # now remembered by the server
    assert list(before.user.roles) == [common_pb2.ROLE_USER]
    await auth.SetUserRoles(roles_request(user.user.id, common_pb2.ROLE_USER, common_pb2.ROLE_PROFESSIONAL),
                            metadata=admin.metadata)
    new_roles = [common_pb2.ROLE_PROFESSIONAL, common_pb2.ROLE_USER]
    deadline = time.monotonic() + live_server.settings.revocation_refresh_seconds + BOUND_SLACK_SECONDS
    while True:
        try:
            seen = await auth.GetCurrentUser(ME, metadata=user.metadata)
        except aio.AioRpcError as error:
            outdated = failure_of(error)
            break
        assert list(seen.user.roles) == new_roles
        assert time.monotonic() < deadline, "the old token is still accepted past the refresh bound"
        await asyncio.sleep(0.02)
    assert (outdated.code, outdated.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_OUTDATED")
    refreshed = await auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=user.refresh_token))
    after = await auth.GetCurrentUser(ME, metadata=bearer(refreshed.access_token))
    assert list(after.user.roles) == new_roles


@pytest.mark.parametrize("roles, bad", [
    ((), "at least one"),
    ((common_pb2.ROLE_UNSPECIFIED,), "UNSPECIFIED"),
    ((common_pb2.ROLE_SERVICE,), "service principals"),
    ((42,), "unknown roles: 42"),
])
async def test_set_roles_rejects_invalid_role_sets(live_server, roles, bad):
    admin, user = await new_admin(live_server), await new_user(live_server.auth)
    failure = await fails(live_server.auth.SetUserRoles(roles_request(user.user.id, *roles),
                                                        metadata=admin.metadata))
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert bad in failure.field_violations["roles"]


async def test_set_roles_of_an_unknown_user_is_not_found(live_server):
    admin = await new_admin(live_server)
    failure = await fails(live_server.auth.SetUserRoles(roles_request("0" * 32, common_pb2.ROLE_USER),
                                                        metadata=admin.metadata))
    assert failure.code is grpc.StatusCode.NOT_FOUND
    assert failure.reason == "USER_NOT_FOUND"


async def test_an_admin_cannot_remove_their_own_admin_role(live_server):
    admin = await new_admin(live_server)
    failure = await fails(live_server.auth.SetUserRoles(roles_request(admin.user.id, common_pb2.ROLE_USER),
                                                        metadata=admin.metadata))
    assert failure.code is grpc.StatusCode.FAILED_PRECONDITION
    assert failure.reason == "CANNOT_REMOVE_OWN_ADMIN"


async def test_a_service_token_reads_but_never_calls_admin_or_people_only_rpcs(live_server):
    issued = live_server.container.service_tokens.issue(name=unique_username("svc"), ttl_seconds=3600,
                                                        issued_by="operator:test")
    account, service = issued.account, bearer(issued.token)
    me = await live_server.auth.GetCurrentUser(ME, metadata=service)
    assert list(me.user.roles) == [common_pb2.ROLE_SERVICE]
    for call in (live_server.auth.SetUserRoles(roles_request(account.id, common_pb2.ROLE_ADMIN), metadata=service),
                 live_server.auth.SignOut(auth_pb2.SignOutRequest(refresh_token="x"), metadata=service)):
        failure = await fails(call)
        assert failure.code is grpc.StatusCode.PERMISSION_DENIED
        assert failure.reason == "ROLE_REQUIRED"


# -- audit, request ids, unexpected errors ----------------------------------------------------------
async def test_sign_up_and_failed_sign_in_are_in_the_audit_trail(live_server):
    user = await new_user(live_server.auth)
    await fails(live_server.auth.SignIn(auth_pb2.SignInRequest(login=user.username, password="wrong-pass-123"),
                                        metadata=(("x-request-id", f"audit-{user.username}"),)))
    live_server.container.audit_recorder.flush()
    with live_server.container.read_sessions.begin() as session:
        signed_up = session.scalars(select(AuditEvent).where(
            AuditEvent.action == actions.USER_SIGNED_UP, AuditEvent.actor_id == user.user.id)).one()
        failed = session.scalars(select(AuditEvent).where(
            AuditEvent.action == actions.SIGN_IN_FAILED, AuditEvent.request_id == f"audit-{user.username}")).one()
    assert signed_up.target == f"user:{user.user.id}"
    assert failed.payload["login"] == user.username
    assert failed.peer.startswith("ipv4:127.0.0.1:")


async def test_every_response_carries_the_request_id_given_or_generated(live_server):
    user = await new_user(live_server.auth)
    call = live_server.auth.GetCurrentUser(ME, metadata=(*user.metadata, ("x-request-id", "req-from-client")))
    await call
    assert ("x-request-id", "req-from-client") in tuple(await call.trailing_metadata())

    call = live_server.auth.GetCurrentUser(ME, metadata=user.metadata)
    await call
    generated = dict(await call.trailing_metadata())["x-request-id"]
    assert len(generated) == 32

    failure = await fails(live_server.auth.GetCurrentUser(ME, metadata=(("x-request-id", "req-failing"),)))
    assert failure.trailing["x-request-id"] == "req-failing"


async def test_an_unexpected_exception_is_internal_with_the_request_id_and_no_internals(live_server, monkeypatch):
    user = await new_user(live_server.auth)

    def broken(user_id: str) -> None:
        raise RuntimeError("SELECT password_hash FROM users -- Traceback")

    monkeypatch.setattr(live_server.container.identity, "get_account", broken)
    failure = await fails(live_server.auth.GetCurrentUser(
        ME, metadata=(*user.metadata, ("x-request-id", "req-boom"))))
    assert failure.code is grpc.StatusCode.INTERNAL
    assert failure.reason == "INTERNAL"
    assert "req-boom" in failure.message
    assert "SELECT" not in failure.message and "Traceback" not in failure.message


async def test_log_lines_written_during_a_call_carry_its_request_id(live_server, monkeypatch):
    user = await new_user(live_server.auth)
    identity = live_server.container.identity
    get_account = identity.get_account
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.addFilter(RequestIdFilter())
    handler.emit = records.append  # type: ignore[method-assign]

    def logging_get_account(user_id: str):
        logging.getLogger("pixelcheck.iam").warning("looking up %s", user_id)  # in an offloaded thread
        return get_account(user_id)

    monkeypatch.setattr(identity, "get_account", logging_get_account)
    logging.getLogger("pixelcheck").addHandler(handler)
    try:
        await live_server.auth.GetCurrentUser(ME, metadata=(*user.metadata, ("x-request-id", "req-logged")))
    finally:
        logging.getLogger("pixelcheck").removeHandler(handler)
    inside = [r for r in records if r.getMessage() == f"looking up {user.user.id}"]
    assert [r.request_id for r in inside] == ["req-logged"]
    assert all(r.request_id == "req-logged" for r in records if r.name == "pixelcheck.rpc")
