"""Domain errors to gRPC statuses with AIP-193 details (ErrorInfo, BadRequest, RetryInfo)."""

from __future__ import annotations

import math

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from pixelcheck import errors

DOMAIN = "pixelcheck"
DETAILS_KEY = "grpc-status-details-bin"

_CODES: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.Forbidden: grpc.StatusCode.PERMISSION_DENIED,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.TooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Conflict: grpc.StatusCode.ABORTED,
    errors.Cancelled: grpc.StatusCode.CANCELLED,
}


def status_code_for(error: errors.DomainError) -> grpc.StatusCode:
    for kind in type(error).__mro__:
        if kind in _CODES:
            return _CODES[kind]  # type: ignore[index]
    return grpc.StatusCode.INTERNAL


def status_details(code: grpc.StatusCode, message: str, reason: str, *,
                   violations: tuple[tuple[str, str], ...] = (), retry_after_seconds: float | None = None,
                   metadata: dict[str, str] | None = None) -> bytes:
    """A serialized google.rpc.Status for the grpc-status-details-bin trailer."""
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message)
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata or {})
    status.details.add().Pack(info)
    if violations:
        bad = error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in violations
        ])
        status.details.add().Pack(bad)
    if retry_after_seconds is not None:
        seconds = max(0.0, retry_after_seconds)
        delay = duration_pb2.Duration(seconds=int(seconds), nanos=int((seconds - math.floor(seconds)) * 1e9))
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    return status.SerializeToString()


def details_for(error: errors.DomainError) -> tuple[grpc.StatusCode, bytes]:
    code = status_code_for(error)
    return code, status_details(code, error.message, error.reason, violations=error.violations,
                                retry_after_seconds=error.retry_after_seconds, metadata=error.metadata)
