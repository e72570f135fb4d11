"""The error interceptor on a real gRPC server: a database that went away answers UNAVAILABLE with a retry
delay, whether SQLAlchemy wrapped the driver's error or let it through (as it does when a connection is lost
while it goes back to the pool); anything else unexpected is a bare INTERNAL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pymysql
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from sqlalchemy.exc import OperationalError

from pixelcheck.api.interceptors import ErrorInterceptor


@pytest.fixture
async def failing_server() -> AsyncIterator[tuple[aio.Channel, dict[str, BaseException]]]:
    """A server with one method, /test.Failing/Call, that raises whatever the test put in `raised["error"]`."""
    raised: dict[str, BaseException] = {}

    async def call(_request: bytes, _context: aio.ServicerContext) -> bytes:
        raise raised["error"]

    server = aio.server(interceptors=[ErrorInterceptor()])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Failing", {
        "Call": grpc.unary_unary_rpc_method_handler(call)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel, raised
    finally:
        await channel.close()
        await server.stop(None)


async def _fails(channel: aio.Channel) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as failure:
        await channel.unary_unary("/test.Failing/Call")(b"", timeout=5)
    return failure.value


def _details(failure: aio.AioRpcError) -> status_pb2.Status:
    raw = dict(failure.trailing_metadata() or ()).get("grpc-status-details-bin")
    assert raw is not None, "no rich status details"
    return status_pb2.Status.FromString(raw)


@pytest.mark.parametrize("error", [
    pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"),
    OperationalError("SELECT 1", {}, pymysql.err.OperationalError(2006, "MySQL server has gone away")),
], ids=["drivers-own-error", "wrapped-by-sqlalchemy"])
async def test_a_database_that_went_away_answers_unavailable_with_a_retry_delay(
        failing_server: tuple[aio.Channel, dict[str, BaseException]], error: BaseException) -> None:
    channel, raised = failing_server
    raised["error"] = error
    failure = await _fails(channel)
    assert failure.code() == grpc.StatusCode.UNAVAILABLE
    infos, retries = [], []
    for detail in _details(failure).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info.reason)
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retries.append(retry.retry_delay.seconds)
    assert infos == ["DATABASE_UNAVAILABLE"]
    assert retries and retries[0] > 0


async def test_a_bad_query_is_a_bare_internal_error(failing_server: tuple[aio.Channel, dict[str, BaseException]],
                                                   ) -> None:
    channel, raised = failing_server
    raised["error"] = pymysql.err.ProgrammingError(1064, "You have an error in your SQL syntax")
    failure = await _fails(channel)
    assert failure.code() == grpc.StatusCode.INTERNAL
    assert "syntax" not in (failure.details() or "")
