"""PixelCheckError: a failed call, decoded from the gRPC status and its AIP-193 details."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

REQUEST_ID_KEY = "x-request-id"


@dataclass(frozen=True)
class FieldViolation:
    """One bad request field, from a google.rpc.BadRequest detail."""

    field: str
    description: str


@dataclass(eq=False)  # exceptions compare and hash by identity
class PixelCheckError(Exception):
    """A call that did not succeed.

    `code` is the canonical gRPC status code, `reason` the server's ErrorInfo reason (UPPER_SNAKE_CASE;
    empty when the failure did not come from PixelCheck, e.g. the server could not be reached) and
    `request_id` the id to quote when reporting a problem.
    """

    code: grpc.StatusCode
    message: str
    reason: str = ""
    request_id: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    violations: tuple[FieldViolation, ...] = ()
    retry_after_seconds: float | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        reason = f" {self.reason}" if self.reason else ""
        text = f"{self.code.name}{reason}: {self.message}"
        for violation in self.violations:
            text += f"\n  {violation.field}: {violation.description}"
        return text + (f" (request id {self.request_id})" if self.request_id else "")

    @property
    def unreachable(self) -> bool:
        """True when no PixelCheck server answered: the transport failed, not the service."""
        transport = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        return self.code in transport and not self.reason

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError, request_id: str = "") -> PixelCheckError:
        """Decode a failed call: status code and message, ErrorInfo, BadRequest, RetryInfo and the
        trailing x-request-id (falling back to the id the client sent)."""
        call: grpc.Call = error  # type: ignore[assignment]
        code = call.code() or grpc.StatusCode.UNKNOWN
        trailers = {key: value for key, value in (call.trailing_metadata() or ())}
        echoed = trailers.get(REQUEST_ID_KEY)
        found = cls(code=code, message=call.details() or code.name,
                    request_id=echoed if isinstance(echoed, str) else request_id)
        try:
            status = rpc_status.from_call(call)
        except ValueError:  # details inconsistent with the status: keep what the status itself says
            status = None
        if status is None:
            return found
        violations: list[FieldViolation] = []
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                found.reason, found.metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                found.retry_after_seconds = retry.retry_delay.ToTimedelta().total_seconds()
        found.violations = tuple(violations)
        return found


class IntegrityError(Exception):
    """Downloaded bytes do not match the size or SHA-256 the server announced."""
