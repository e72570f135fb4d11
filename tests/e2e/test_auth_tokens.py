"""The auth interceptor end to end: every bad-token case, on unary and streaming RPCs alike."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from grpc import aio
from pixelcheck.v1 import (
    auth_pb2,
    ingestion_pb2,
    ingestion_pb2_grpc,
    reports_pb2,
    reports_pb2_grpc,
    results_pb2,
    results_pb2_grpc,
)

from tests.e2e.flows import Metadata, bearer, fails, failure_of, new_user

ME = auth_pb2.GetCurrentUserRequest()
# HS512 signed with the server's (HS256-sized) secret is the point of one case.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def forged(server: Any, *, key: Any = None, algorithm: str = "HS256", headers: dict | None = None,
           **overrides: Any) -> str:
    """A token like the server's, with some claims, the key or the algorithm changed."""
    now = int(time.time())
    settings = server.settings
    claims = {"sub": "0" * 32, "roles": ["ADMIN"], "iat": now, "nbf": now, "exp": now + 600,
              "iss": settings.jwt_issuer, "aud": settings.jwt_audience, "jti": uuid.uuid4().hex, "typ": "access"}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, settings.jwt_secret if key is None else key, algorithm=algorithm, headers=headers)


def unsigned(server: Any) -> str:
    """An `alg: none` token: header and claims, empty signature."""
    def part(doc: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()
    claims = jwt.decode(forged(server), options={"verify_signature": False})
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def tampered(token: str) -> str:
    """token with its claims rewritten to ADMIN and the original signature kept."""
    header, _, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False}) | {"roles": ["ADMIN"]}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{body}.{signature}"


ED25519_KEY = ed25519.Ed25519PrivateKey.generate()
BAD_TOKENS: dict[str, tuple[Callable[[Any], Metadata], str]] = {
    "missing": (lambda s: (), "MISSING_CREDENTIALS"),
    "not bearer": (lambda s: (("authorization", f"Basic {forged(s)}"),), "MALFORMED_CREDENTIALS"),
    "empty bearer": (lambda s: (("authorization", "Bearer "),), "MALFORMED_CREDENTIALS"),
    "garbage": (lambda s: bearer("not.a.jwt"), "TOKEN_INVALID"),
    "alg none": (lambda s: bearer(unsigned(s)), "TOKEN_INVALID"),
    "other HMAC algorithm": (lambda s: bearer(forged(s, algorithm="HS512")), "TOKEN_INVALID"),
    "other key type": (lambda s: bearer(forged(s, key=ED25519_KEY, algorithm="EdDSA")), "TOKEN_INVALID"),
    "wrong secret": (lambda s: bearer(forged(s, key="x" * 40)), "TOKEN_INVALID"),
    "missing claim": (lambda s: bearer(forged(s, jti=None)), "TOKEN_INVALID"),
    "unknown role": (lambda s: bearer(forged(s, roles=["ROOT"])), "TOKEN_INVALID"),
    "wrong issuer": (lambda s: bearer(forged(s, iss="someone-else")), "TOKEN_WRONG_ISSUER"),
    "wrong audience": (lambda s: bearer(forged(s, aud="another-api")), "TOKEN_WRONG_AUDIENCE"),
    "expired": (lambda s: bearer(forged(s, iat=int(time.time()) - 3600, nbf=int(time.time()) - 3600,
                                        exp=int(time.time()) - 60)), "TOKEN_EXPIRED"),
    "not yet valid": (lambda s: bearer(forged(s, nbf=int(time.time()) + 600)), "TOKEN_NOT_YET_VALID"),
    "not an access token": (lambda s: bearer(forged(s, typ="refresh")), "WRONG_TOKEN_TYPE"),
}


@pytest.mark.parametrize("case", BAD_TOKENS)
async def test_a_bad_token_is_unauthenticated_with_its_reason(live_server, case):
    make_metadata, reason = BAD_TOKENS[case]
    failure = await fails(live_server.auth.GetCurrentUser(ME, metadata=make_metadata(live_server)))
    assert failure.code is grpc.StatusCode.UNAUTHENTICATED
    assert failure.reason == reason
    assert failure.trailing["x-request-id"]


async def test_a_token_with_its_claims_tampered_is_rejected(live_server):
    user = await new_user(live_server.auth)
    failure = await fails(live_server.auth.GetCurrentUser(ME, metadata=bearer(tampered(user.access_token))))
    assert failure.code is grpc.StatusCode.UNAUTHENTICATED
    assert failure.reason == "TOKEN_INVALID"


# -- streaming RPCs are guarded like unary ones -----------------------------------------------------
async def _upload_requests() -> AsyncIterator[ingestion_pb2.UploadImageRequest]:
    yield ingestion_pb2.UploadImageRequest(metadata=ingestion_pb2.UploadMetadata(filename="a.png", size_bytes=1))
    yield ingestion_pb2.UploadImageRequest(chunk=b"x")


async def _server_streaming_failure(call: aio.UnaryStreamCall) -> Any:
    try:
        async for _ in call:
            raise AssertionError("a message arrived on a call that should have been refused")
    except aio.AioRpcError as error:
        return failure_of(error)
    raise AssertionError("the stream ended without an error")


def _streaming_calls(server: Any, metadata: Metadata) -> dict[str, Any]:
    return {
        "client-streaming UploadImage": lambda: fails(server.stub(ingestion_pb2_grpc.IngestionServiceStub)
                                                      .UploadImage(_upload_requests(), metadata=metadata)),
        "server-streaming WatchAnalysis": lambda: _server_streaming_failure(
            server.stub(results_pb2_grpc.ResultsServiceStub).WatchAnalysis(
                results_pb2.WatchAnalysisRequest(image_id="0" * 32), metadata=metadata)),
        "server-streaming DownloadReport": lambda: _server_streaming_failure(
            server.stub(reports_pb2_grpc.ReportsServiceStub).DownloadReport(
                reports_pb2.DownloadReportRequest(report_id="0" * 32), metadata=metadata)),
    }


@pytest.mark.parametrize("kind", ["client-streaming UploadImage", "server-streaming WatchAnalysis",
                                  "server-streaming DownloadReport"])
@pytest.mark.parametrize("case", ["missing", "alg none", "expired", "wrong audience"])
async def test_streaming_rpcs_refuse_bad_tokens_like_unary_ones(live_server, kind, case):
    make_metadata, reason = BAD_TOKENS[case]
    failure = await _streaming_calls(live_server, make_metadata(live_server))[kind]()
    assert failure.code is grpc.StatusCode.UNAUTHENTICATED
    assert failure.reason == reason
    assert failure.trailing["x-request-id"]


async def test_a_server_streaming_rpc_checks_roles_too(live_server):
    user = await new_user(live_server.auth)  # USER may not read reports: PROFESSIONAL, ADMIN, SERVICE only
    failure = await _streaming_calls(live_server, user.metadata)["server-streaming DownloadReport"]()
    assert failure.code is grpc.StatusCode.PERMISSION_DENIED
    assert failure.reason == "ROLE_REQUIRED"
