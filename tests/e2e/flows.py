"""Client-side steps end-to-end tests repeat: sign up, sign in, become admin, read error details."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from pixelcheck.v1 import auth_pb2, auth_pb2_grpc

PASSWORD = "violet-harbour-7421"
DETAILS_KEY = "grpc-status-details-bin"
Metadata = tuple[tuple[str, str], ...]


def unique_username(prefix: str = "user") -> str:
    """A username no other test uses (tests share one database)."""
    return f"{prefix}_{secrets.token_hex(5)}"


def bearer(access_token: str) -> Metadata:
    """Call metadata carrying access_token."""
    return (("authorization", f"Bearer {access_token}"),)


@dataclass
class SignedInUser:
    username: str
    password: str
    user: auth_pb2.User
    access_token: str
    refresh_token: str

    @property
    def metadata(self) -> Metadata:
        return bearer(self.access_token)


async def sign_up(auth: auth_pb2_grpc.AuthServiceStub, username: str | None = None, *,
                  password: str = PASSWORD, email: str | None = None) -> auth_pb2.User:
    """Create an account (role USER) and return it."""
    username = username or unique_username()
    response = await auth.SignUp(auth_pb2.SignUpRequest(
        username=username, email=email or f"{username}@example.org", password=password,
        display_name=username.title()))
    return response.user


async def sign_in(auth: auth_pb2_grpc.AuthServiceStub, login: str,
                  password: str = PASSWORD) -> auth_pb2.SignInResponse:
    return await auth.SignIn(auth_pb2.SignInRequest(login=login, password=password))


async def new_user(auth: auth_pb2_grpc.AuthServiceStub, prefix: str = "user") -> SignedInUser:
    """Sign a new user up and in."""
    username = unique_username(prefix)
    await sign_up(auth, username)
    signed_in = await sign_in(auth, username)
    return SignedInUser(username, PASSWORD, signed_in.user, signed_in.access_token, signed_in.refresh_token)


async def new_admin(server: Any, prefix: str = "admin") -> SignedInUser:
    """Create an ADMIN the way an operator does (the identity use case behind `users create-admin`),
    then sign in through the API. server is a tests.e2e.conftest.LiveServer."""
    username = unique_username(prefix)
    server.container.identity.create_admin(username=username, email=f"{username}@example.org",
                                           password=PASSWORD)
    signed_in = await sign_in(server.auth, username)
    return SignedInUser(username, PASSWORD, signed_in.user, signed_in.access_token, signed_in.refresh_token)


@dataclass
class Failure:
    """A failed call: its status code and AIP-193 details."""

    code: grpc.StatusCode
    message: str
    reason: str
    info: error_details_pb2.ErrorInfo
    field_violations: dict[str, str]
    retry_delay_seconds: float | None
    trailing: dict[str, Any]


def failure_of(error: aio.AioRpcError) -> Failure:
    """The status code, ErrorInfo, BadRequest and RetryInfo of a failed call."""
    trailing = {k: v for k, v in (error.trailing_metadata() or ())}
    status = status_pb2.Status.FromString(trailing[DETAILS_KEY])
    info = error_details_pb2.ErrorInfo()
    violations: dict[str, str] = {}
    retry: float | None = None
    infos = 0
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
            infos += 1
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.update({v.field: v.description for v in bad.field_violations})
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry_info = error_details_pb2.RetryInfo()
            detail.Unpack(retry_info)
            retry = retry_info.retry_delay.seconds + retry_info.retry_delay.nanos / 1e9
    assert infos == 1, f"expected exactly one ErrorInfo, got {infos}"
    assert info.domain == "pixelcheck"
    assert status.code == error.code().value[0]
    return Failure(error.code(), error.details() or "", info.reason, info, violations, retry, trailing)


async def fails(call: Awaitable[Any]) -> Failure:
    """Await a call that must fail; its Failure."""
    try:
        await call
    except aio.AioRpcError as error:
        return failure_of(error)
    raise AssertionError("the call succeeded but was expected to fail")
