"""Domain errors. The gRPC edge maps each to a status code with AIP-193 details (pixelcheck.api.errors).

Each carries a machine reason (UPPER_SNAKE_CASE), an English message safe to show to the caller, and
optionally the fields at fault and how long to wait before retrying. No grpc import here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class DomainError(Exception):
    """Base of every error a use case raises on purpose."""

    default_reason = "ERROR"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        violations: Sequence[tuple[str, str]] = (),
        retry_after_seconds: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.violations = tuple(violations)  # (field, description) pairs
        self.retry_after_seconds = retry_after_seconds
        self.metadata = dict(metadata or {})


class InvalidInput(DomainError):
    default_reason = "INVALID_ARGUMENT"


class NotFound(DomainError):
    default_reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    default_reason = "ALREADY_EXISTS"


class Unauthenticated(DomainError):
    default_reason = "UNAUTHENTICATED"


class Forbidden(DomainError):
    default_reason = "PERMISSION_DENIED"


class FailedPrecondition(DomainError):
    default_reason = "FAILED_PRECONDITION"


class TooLarge(DomainError):
    """A size or rate limit was crossed (RESOURCE_EXHAUSTED)."""

    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    """A dependency (database, broker) cannot be reached right now; retrying later helps."""

    default_reason = "UNAVAILABLE"


class Cancelled(DomainError):
    """The caller went away (client cancel or server shutdown) before the work was kept."""

    default_reason = "CANCELLED"


class Conflict(DomainError):
    """Concurrent modification lost a race (ABORTED); retrying helps."""

    default_reason = "ABORTED"


def require_fields(violations: list[tuple[str, str]], message: str = "The request has invalid fields") -> None:
    """Raise one InvalidInput listing every violation, when there is any."""
    if violations:
        details = "; ".join(f"{name}: {why}" for name, why in violations)
        raise InvalidInput(f"{message}: {details}", violations=violations)
