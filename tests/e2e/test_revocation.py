"""Credentials that can be taken back, end to end on two servers sharing one database: revoked service
tokens, role changes, deactivation and sign-out everywhere are refused by both within the refresh bound;
the new admin RPCs with their error cases."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import jwt
import pytest
import pytest_asyncio
from grpc import aio
from pixelcheck.v1 import auth_pb2, common_pb2

from pixelcheck.settings import Settings
from tests.e2e.flows import PASSWORD, SignedInUser, bearer, fails, new_admin, new_user, sign_in, unique_username
from tests.e2e.servers import LiveServer, start_live_server

ME = auth_pb2.GetCurrentUserRequest()
REFRESH_SECONDS = 0.2
# The stated bound is one refresh interval; the rest is slack for a loaded test machine.
BOUND_SECONDS = REFRESH_SECONDS + 3.0


@pytest.fixture(scope="module")
def server_settings(base_settings: Settings, migrated_database_url: str) -> Settings:
    return base_settings.with_overrides(signin_max_failures=10_000, signin_address_max_failures=10_000,
                                        revocation_refresh_seconds=REFRESH_SECONDS,
                                        service_token_last_used_flush_seconds=REFRESH_SECONDS)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def other_server(server_settings: Settings, live_server: LiveServer) -> AsyncIterator[LiveServer]:
    """A second server process's worth of state (its own container and revocation cache)."""
    server = await start_live_server(server_settings)
    try:
        yield server
    finally:
        await server.stop()


async def refused_within(bound: float, call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    """Repeat call until it fails; (seconds it took, the Failure). Fails the test past bound."""
    started = time.monotonic()
    while True:
        try:
            await call()
        except aio.AioRpcError:
            return time.monotonic() - started, await fails(call())
        assert time.monotonic() - started < bound, f"still accepted after {bound:.1f} s"
        await asyncio.sleep(0.05)


def issue_service_token(server: LiveServer, name: str = "") -> Any:
    return server.container.service_tokens.issue(name=name or unique_username("svc"), ttl_seconds=3600,
                                                 issued_by="operator:test")


# -- jti on every token ------------------------------------------------------------------------------
async def test_access_and_service_tokens_carry_a_jti_and_the_token_version(live_server):
    user = await new_user(live_server.auth)
    claims = jwt.decode(user.access_token, options={"verify_signature": False})
    assert len(claims["jti"]) == 32 and claims["ver"] == 0
    issued = issue_service_token(live_server)
    service_claims = jwt.decode(issued.token, options={"verify_signature": False})
    assert service_claims["jti"] == issued.record.id


# -- service tokens ---------------------------------------------------------------------------------
async def test_a_revoked_service_token_is_refused_by_both_servers(live_server, other_server):
    admin = await new_admin(live_server)
    issued = issue_service_token(live_server)
    service = bearer(issued.token)
    for server in (live_server, other_server):
        assert (await server.auth.GetCurrentUser(ME, metadata=service)).user.id == issued.account.id
    revoked = await live_server.auth.RevokeServiceToken(auth_pb2.RevokeServiceTokenRequest(id=issued.record.id),
                                                        metadata=admin.metadata)
    assert revoked.service_token.HasField("revoke_time")
    assert revoked.service_token.revoked_by == f"user:{admin.user.id}"
    for server in (live_server, other_server):
        took, failure = await refused_within(BOUND_SECONDS, lambda s=server: s.auth.GetCurrentUser(
            ME, metadata=service))
        assert failure.code is grpc.StatusCode.UNAUTHENTICATED
        assert failure.reason == "TOKEN_REVOKED"
    other = issue_service_token(live_server)  # other tokens keep working
    assert (await other_server.auth.GetCurrentUser(ME, metadata=bearer(other.token))).user.id == other.account.id


async def test_service_tokens_are_listed_newest_first_page_by_page_with_last_use(live_server, other_server):
    admin = await new_admin(live_server)
    name = unique_username("svc")
    issued = [issue_service_token(live_server, name) for _ in range(3)]
    await other_server.auth.GetCurrentUser(ME, metadata=bearer(issued[0].token))
    seen: list[auth_pb2.ServiceToken] = []
    page_token = ""
    while True:
        page = await live_server.auth.ListServiceTokens(auth_pb2.ListServiceTokensRequest(
            page_size=2, page_token=page_token, service_name=name), metadata=admin.metadata)
        seen.extend(page.service_tokens)
        page_token = page.next_page_token
        if not page_token:
            break
    assert [t.id for t in seen] == [i.record.id for i in reversed(issued)]
    assert {t.name for t in seen} == {name} and {t.issued_by for t in seen} == {"operator:test"}
    assert all(t.HasField("expire_time") and not t.HasField("revoke_time") for t in seen)

    async def last_used() -> bool:
        page = await live_server.auth.ListServiceTokens(auth_pb2.ListServiceTokensRequest(service_name=name),
                                                        metadata=admin.metadata)
        return page.service_tokens[-1].HasField("last_used_time")

    deadline = time.monotonic() + BOUND_SECONDS
    while not await last_used():
        assert time.monotonic() < deadline, "last_used_time was never written"
        await asyncio.sleep(0.1)


async def test_service_token_rpcs_answer_bad_requests_with_aip_193_errors(live_server):
    admin, person = await new_admin(live_server), await new_user(live_server.auth)
    service = bearer(issue_service_token(live_server).token)
    cases = [
        (live_server.auth.ListServiceTokens(auth_pb2.ListServiceTokensRequest(), metadata=person.metadata),
         grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED"),
        (live_server.auth.ListServiceTokens(auth_pb2.ListServiceTokensRequest(), metadata=service),
         grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED"),
        (live_server.auth.ListServiceTokens(auth_pb2.ListServiceTokensRequest(page_size=-1),
                                            metadata=admin.metadata),
         grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_SIZE"),
        (live_server.auth.ListServiceTokens(auth_pb2.ListServiceTokensRequest(page_token="forged.token"),
                                            metadata=admin.metadata),
         grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN"),
        (live_server.auth.RevokeServiceToken(auth_pb2.RevokeServiceTokenRequest(id="0" * 32),
                                             metadata=person.metadata),
         grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED"),
        (live_server.auth.RevokeServiceToken(auth_pb2.RevokeServiceTokenRequest(id="0" * 32),
                                             metadata=admin.metadata),
         grpc.StatusCode.NOT_FOUND, "SERVICE_TOKEN_NOT_FOUND"),
        (live_server.auth.RevokeServiceToken(auth_pb2.RevokeServiceTokenRequest(id="not-an-id"),
                                             metadata=admin.metadata),
         grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
    ]
    for call, code, reason in cases:
        failure = await fails(call)
        assert (failure.code, failure.reason) == (code, reason)
    bad_id = await fails(live_server.auth.RevokeServiceToken(auth_pb2.RevokeServiceTokenRequest(id=""),
                                                             metadata=admin.metadata))
    assert "id" in bad_id.field_violations


async def test_revoking_a_service_token_twice_keeps_the_first_revocation(live_server):
    admin = await new_admin(live_server)
    issued = issue_service_token(live_server)
    request = auth_pb2.RevokeServiceTokenRequest(id=issued.record.id)
    first = await live_server.auth.RevokeServiceToken(request, metadata=admin.metadata)
    again = await live_server.auth.RevokeServiceToken(request, metadata=admin.metadata)
    assert again.service_token.revoke_time == first.service_token.revoke_time


# -- role changes and deactivation -------------------------------------------------------------------
def roles_request(user_id: str, *roles: int, disabled: bool | None = None) -> auth_pb2.SetUserRolesRequest:
    request = auth_pb2.SetUserRolesRequest(user_id=user_id, roles=list(roles))
    if disabled is not None:
        request.disabled = disabled
    return request


async def promoted_admin(server: LiveServer, admin: SignedInUser) -> SignedInUser:
    user = await new_user(server.auth)
    await server.auth.SetUserRoles(roles_request(user.user.id, common_pb2.ROLE_USER, common_pb2.ROLE_ADMIN),
                                   metadata=admin.metadata)
    signed_in = await sign_in(server.auth, user.username)
    return SignedInUser(user.username, PASSWORD, signed_in.user, signed_in.access_token, signed_in.refresh_token)


async def test_a_demoted_admin_loses_admin_on_both_servers_within_the_bound(live_server, other_server):
    admin = await new_admin(live_server)
    deputy = await promoted_admin(live_server, admin)
    listing = auth_pb2.ListServiceTokensRequest(page_size=1)
    for server in (live_server, other_server):
        await server.auth.ListServiceTokens(listing, metadata=deputy.metadata)
    await live_server.auth.SetUserRoles(roles_request(deputy.user.id, common_pb2.ROLE_USER), metadata=admin.metadata)
    for server in (live_server, other_server):
        took, failure = await refused_within(BOUND_SECONDS, lambda s=server: s.auth.ListServiceTokens(
            listing, metadata=deputy.metadata))
        assert (failure.code, failure.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_OUTDATED")
    refreshed = await other_server.auth.RefreshToken(auth_pb2.RefreshTokenRequest(
        refresh_token=deputy.refresh_token))
    denied = await fails(other_server.auth.ListServiceTokens(listing, metadata=bearer(refreshed.access_token)))
    assert (denied.code, denied.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")
    me = await other_server.auth.GetCurrentUser(ME, metadata=bearer(refreshed.access_token))
    assert list(me.user.roles) == [common_pb2.ROLE_USER]


async def test_a_disabled_account_is_shut_out_and_can_be_enabled_again(live_server, other_server):
    admin, user = await new_admin(live_server), await new_user(live_server.auth)
    disabled = await live_server.auth.SetUserRoles(roles_request(user.user.id, disabled=True),
                                                   metadata=admin.metadata)
    assert disabled.user.disabled and list(disabled.user.roles) == [common_pb2.ROLE_USER]
    _, failure = await refused_within(BOUND_SECONDS, lambda: other_server.auth.GetCurrentUser(
        ME, metadata=user.metadata))
    assert failure.reason == "TOKEN_OUTDATED"
    signing_in = await fails(sign_in(other_server.auth, user.username))
    assert (signing_in.code, signing_in.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_DISABLED")
    refreshing = await fails(other_server.auth.RefreshToken(auth_pb2.RefreshTokenRequest(
        refresh_token=user.refresh_token)))
    assert refreshing.code is grpc.StatusCode.UNAUTHENTICATED  # disabling ended the session
    wrong = await fails(other_server.auth.SignIn(auth_pb2.SignInRequest(login=user.username,
                                                                        password="not-the-password-1")))
    assert wrong.reason == "INVALID_CREDENTIALS"  # nothing said about the account without the password
    enabled = await live_server.auth.SetUserRoles(roles_request(user.user.id, disabled=False),
                                                  metadata=admin.metadata)
    assert not enabled.user.disabled
    assert (await sign_in(other_server.auth, user.username)).user.id == user.user.id


async def test_an_admin_cannot_disable_themselves(live_server):
    admin = await new_admin(live_server)
    failure = await fails(live_server.auth.SetUserRoles(roles_request(admin.user.id, disabled=True),
                                                        metadata=admin.metadata))
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CANNOT_DISABLE_SELF")


async def test_set_user_roles_without_roles_or_disabled_is_invalid(live_server):
    admin, user = await new_admin(live_server), await new_user(live_server.auth)
    failure = await fails(live_server.auth.SetUserRoles(roles_request(user.user.id), metadata=admin.metadata))
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT and "roles" in failure.field_violations


# -- sign out everywhere -----------------------------------------------------------------------------
async def test_sign_out_everywhere_ends_every_session_of_the_caller(live_server, other_server):
    user = await new_user(live_server.auth)
    second = await sign_in(other_server.auth, user.username)  # another device
    await live_server.auth.SignOutEverywhere(auth_pb2.SignOutEverywhereRequest(), metadata=user.metadata)
    for server, token in ((live_server, user.access_token), (other_server, second.access_token)):
        _, failure = await refused_within(BOUND_SECONDS, lambda s=server, t=token: s.auth.GetCurrentUser(
            ME, metadata=bearer(t)))
        assert failure.reason == "TOKEN_OUTDATED"
    for refresh_token in (user.refresh_token, second.refresh_token):
        failure = await fails(other_server.auth.RefreshToken(auth_pb2.RefreshTokenRequest(
            refresh_token=refresh_token)))
        assert (failure.code, failure.reason) == (grpc.StatusCode.UNAUTHENTICATED, "REFRESH_TOKEN_REVOKED")
    again = await sign_in(other_server.auth, user.username)
    assert (await live_server.auth.GetCurrentUser(ME, metadata=bearer(again.access_token))).user.id == user.user.id


async def test_an_admin_signs_another_user_or_a_service_out_everywhere(live_server, other_server):
    admin, user = await new_admin(live_server), await new_user(live_server.auth)
    await live_server.auth.SignOutEverywhere(auth_pb2.SignOutEverywhereRequest(user_id=user.user.id),
                                             metadata=admin.metadata)
    _, failure = await refused_within(BOUND_SECONDS, lambda: other_server.auth.GetCurrentUser(
        ME, metadata=user.metadata))
    assert failure.reason == "TOKEN_OUTDATED"
    issued = issue_service_token(live_server)
    await live_server.auth.SignOutEverywhere(auth_pb2.SignOutEverywhereRequest(user_id=issued.account.id),
                                             metadata=admin.metadata)
    _, failure = await refused_within(BOUND_SECONDS, lambda: other_server.auth.GetCurrentUser(
        ME, metadata=bearer(issued.token)))
    assert failure.reason in ("TOKEN_REVOKED", "TOKEN_OUTDATED")
    # Service tokens are revoked one by one too, not only by version: the reason turns to TOKEN_REVOKED.
    deadline = time.monotonic() + BOUND_SECONDS
    while (await fails(other_server.auth.GetCurrentUser(ME, metadata=bearer(issued.token)))).reason != \
            "TOKEN_REVOKED":
        assert time.monotonic() < deadline, "the service token was never marked revoked"
        await asyncio.sleep(0.05)


async def test_sign_out_everywhere_answers_bad_requests_with_aip_193_errors(live_server):
    admin, user, other = await new_admin(live_server), await new_user(live_server.auth), \
        await new_user(live_server.auth)
    service = bearer(issue_service_token(live_server).token)
    cases = [
        (user.metadata, other.user.id, grpc.StatusCode.PERMISSION_DENIED, "ADMIN_REQUIRED"),
        (service, "", grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED"),
        (admin.metadata, "0" * 32, grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND"),
        (admin.metadata, "NOT-AN-ID", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
    ]
    for metadata, user_id, code, reason in cases:
        failure = await fails(live_server.auth.SignOutEverywhere(
            auth_pb2.SignOutEverywhereRequest(user_id=user_id), metadata=metadata))
        assert (failure.code, failure.reason) == (code, reason)
    # the refused attempt changed nothing for the other user
    assert (await live_server.auth.GetCurrentUser(ME, metadata=other.metadata)).user.id == other.user.id
