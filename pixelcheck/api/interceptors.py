"""Server interceptors for all four RPC kinds: per-call context and audit, error mapping, authentication.

Each interceptor contributes an async context manager around the servicer's behaviour; `_wrap` applies it
to unary and streaming handlers alike. Order (outer to inner): CallContext/audit, errors, auth.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import grpc
from grpc import aio

from pixelcheck import errors
from pixelcheck.api.access import required_roles
from pixelcheck.api.calls import CallInfo, begin_call, current_call
from pixelcheck.api.errors import DETAILS_KEY, details_for, status_details
from pixelcheck.db import database_unreachable
from pixelcheck.iam.principal import Principal

log = logging.getLogger("pixelcheck.rpc")
REQUEST_ID_KEY = "x-request-id"
_MAX_REQUEST_ID = 128

Scope = Callable[[aio.ServicerContext], contextlib.AbstractAsyncContextManager[None]]


class AuditSink(Protocol):
    def record_call(self, info: CallInfo, code: str, duration_ms: int) -> None:
        """Record one finished call; must not block or raise."""


def _metadata_value(details: grpc.HandlerCallDetails, key: str) -> str:
    for k, v in details.invocation_metadata or ():
        if k == key:
            return v if isinstance(v, str) else v.decode("latin-1")
    return ""


def _wrap(handler: grpc.RpcMethodHandler, scope: Scope) -> grpc.RpcMethodHandler:
    """The same handler with scope(context) around its behaviour, for any of the four RPC kinds."""
    kwargs = {"request_deserializer": handler.request_deserializer,
              "response_serializer": handler.response_serializer}
    if handler.unary_unary or handler.stream_unary:
        inner_unary = handler.unary_unary or handler.stream_unary

        async def unary(request: Any, context: aio.ServicerContext) -> Any:
            async with scope(context):
                return await inner_unary(request, context)

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(unary, **kwargs)
        return grpc.stream_unary_rpc_method_handler(unary, **kwargs)

    inner_stream = handler.unary_stream or handler.stream_stream

    async def streaming(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
        async with scope(context):
            result = inner_stream(request, context)
            if inspect.isasyncgen(result):
                async for item in result:
                    yield item
            elif inspect.isawaitable(result):
                await result  # a behaviour that writes with context.write()

    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming, **kwargs)
    return grpc.stream_stream_rpc_method_handler(streaming, **kwargs)


class _ScopedInterceptor(aio.ServerInterceptor):
    def scope(self, details: grpc.HandlerCallDetails) -> Scope:
        raise NotImplementedError

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler  # unknown method: grpc answers UNIMPLEMENTED
        return _wrap(handler, self.scope(handler_call_details))


class CallContextInterceptor(_ScopedInterceptor):
    """Outermost: gives the call its request id, returns it as trailing metadata, records the audit event."""

    def __init__(self, audit: AuditSink) -> None:
        self._audit = audit

    def scope(self, details: grpc.HandlerCallDetails) -> Scope:
        given = _metadata_value(details, REQUEST_ID_KEY)
        request_id = given if 0 < len(given) <= _MAX_REQUEST_ID and given.isprintable() else uuid.uuid4().hex
        audit = self._audit

        @contextlib.asynccontextmanager
        async def call(context: aio.ServicerContext) -> AsyncIterator[None]:
            info = CallInfo(method=details.method, request_id=request_id, peer=context.peer() or "")
            begin_call(info)
            context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
            code = "OK"
            try:
                yield
            except BaseException as exc:
                code = info.code or ("CANCELLED" if isinstance(exc, asyncio.CancelledError) else "UNKNOWN")
                raise
            finally:
                if code == "OK":
                    set_code = context.code() if hasattr(context, "code") else None
                    if isinstance(set_code, grpc.StatusCode) and set_code is not grpc.StatusCode.OK:
                        code = set_code.name
                info.code = code
                duration_ms = int((time.perf_counter() - info.started) * 1000)
                audit.record_call(info, code, duration_ms)
                log.info("rpc %s %s %dms", details.method, code, duration_ms,
                         extra={"request_id": request_id, "method": details.method, "code": code,
                                "actor": info.principal.user_id if info.principal else "",
                                "duration_ms": duration_ms})

        return call


class ErrorInterceptor(_ScopedInterceptor):
    """Maps domain errors to statuses with AIP-193 details; anything unexpected becomes a bare INTERNAL."""

    def scope(self, details: grpc.HandlerCallDetails) -> Scope:
        @contextlib.asynccontextmanager
        async def mapped(context: aio.ServicerContext) -> AsyncIterator[None]:
            try:
                yield
            except errors.DomainError as exc:
                code, status = details_for(exc)
                await _abort(context, code, exc.message, status)
            except (aio.AbortError, grpc.RpcError):
                raise
            except Exception as exc:
                if database_unreachable(exc):
                    # Reads outside unit_of_work meet an unreachable database as a raw driver error.
                    down = errors.Unavailable("The database is unreachable; try again shortly",
                                              reason="DATABASE_UNAVAILABLE", retry_after_seconds=2)
                    code, status = details_for(down)
                    await _abort(context, code, down.message, status)
                    return
                info = current_call()
                request_id = info.request_id if info else ""
                log.exception("unexpected error in %s", details.method, extra={"request_id": request_id})
                message = f"Internal error; quote request id {request_id} when reporting it"
                code = grpc.StatusCode.INTERNAL
                await _abort(context, code, message, status_details(code, message, "INTERNAL"))

        return mapped


async def _abort(context: aio.ServicerContext, code: grpc.StatusCode, message: str, status: bytes) -> None:
    info = current_call()
    if info is not None:
        info.code = code.name
    trailers: list[tuple[str, str | bytes]] = [(DETAILS_KEY, status)]
    if info is not None:
        trailers.append((REQUEST_ID_KEY, info.request_id))
    await context.abort(code, message, tuple(trailers))


class AuthInterceptor(_ScopedInterceptor):
    """Verifies `authorization: Bearer <jwt>` and the role table; puts the principal on the call."""

    def __init__(self, verify_access_token: Callable[[str], Principal]) -> None:
        self._verify = verify_access_token

    def scope(self, details: grpc.HandlerCallDetails) -> Scope:
        roles = required_roles(details.method)
        header = _metadata_value(details, "authorization")
        verify = self._verify

        @contextlib.asynccontextmanager
        async def authorised(context: aio.ServicerContext) -> AsyncIterator[None]:
            if roles is None:
                raise errors.Forbidden(f"Method {details.method} is not served", reason="METHOD_NOT_ALLOWED")
            if roles:  # public methods ignore credentials, so a stale token never blocks SignIn or health
                principal = _authenticate(header, verify)
                info = current_call()
                if info is not None:
                    info.principal = principal
                if not (principal.roles & roles):
                    raise errors.Forbidden(
                        f"This call needs one of the roles {', '.join(sorted(roles))}",
                        reason="ROLE_REQUIRED", metadata={"required_roles": ",".join(sorted(roles))})
            yield

        return authorised


def _authenticate(header: str, verify: Callable[[str], Principal]) -> Principal:
    if not header:
        raise errors.Unauthenticated("Missing authorization metadata: send 'authorization: Bearer <token>'",
                                     reason="MISSING_CREDENTIALS")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthenticated("The authorization metadata must be 'Bearer <token>'",
                                     reason="MALFORMED_CREDENTIALS")
    return verify(token.strip())
