"""Decoding a failed call into PixelCheckError: code, message, AIP-193 details and the request id."""

from __future__ import annotations

import grpc
from google.rpc import code_pb2, status_pb2

from pixelcheck.api.errors import status_details
from pixelcheck.client.errors import FieldViolation, PixelCheckError


class FailedCall(grpc.RpcError, grpc.Call):
    """What grpc raises for a failed call: the status, its message and the trailers."""

    def __init__(self, code: grpc.StatusCode, details: str, trailers: tuple[tuple[str, object], ...]) -> None:
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self):
        return self._trailers

    def initial_metadata(self):
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback) -> bool:
        return False


def test_error_info_bad_request_and_retry_info_are_decoded():
    code, message = grpc.StatusCode.INVALID_ARGUMENT, "The sign-up has 2 invalid fields"
    details = status_details(code, message, "INVALID_FIELDS", retry_after_seconds=1.5,
                             violations=(("username", "too short"), ("email", "not an address")),
                             metadata={"limit": "64"})
    error = PixelCheckError.from_rpc_error(FailedCall(code, message, (
        ("grpc-status-details-bin", details), ("x-request-id", "req-42"))))
    assert (error.code, error.reason, error.message, error.request_id) == (code, "INVALID_FIELDS", message, "req-42")
    assert error.violations == (FieldViolation("username", "too short"), FieldViolation("email", "not an address"))
    assert error.retry_after_seconds == 1.5
    assert error.metadata == {"limit": "64"}
    assert "username: too short" in str(error) and "req-42" in str(error)
    assert not error.unreachable


def test_transport_failure_without_details_is_unreachable_and_keeps_the_sent_request_id():
    error = PixelCheckError.from_rpc_error(
        FailedCall(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses", ()), request_id="sent-1")
    assert (error.reason, error.request_id, error.unreachable) == ("", "sent-1", True)


def test_details_that_contradict_the_status_are_ignored_not_raised():
    wrong = status_pb2.Status(code=code_pb2.NOT_FOUND, message="other").SerializeToString()
    error = PixelCheckError.from_rpc_error(FailedCall(grpc.StatusCode.INTERNAL, "boom", (
        ("grpc-status-details-bin", wrong),)))
    assert (error.code, error.message, error.reason) == (grpc.StatusCode.INTERNAL, "boom", "")
