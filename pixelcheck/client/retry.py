"""When to retry a call and how long to wait: exponential backoff with jitter, for UNAVAILABLE and for the
admission refusals that come before the server read anything."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import grpc

from pixelcheck.client.errors import PixelCheckError


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of idempotent calls that failed with UNAVAILABLE.

    The n-th wait (n from 0) is initial_backoff * multiplier**n, capped at max_backoff, then scaled by a
    random factor in [1 - jitter, 1 + jitter] so many clients do not retry in lockstep. A server's
    RetryInfo delay, when longer, wins.
    """

    max_attempts: int = 5  # including the first call
    initial_backoff: float = 0.2
    max_backoff: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The waits before the 2nd, 3rd, … attempt: max_attempts - 1 of them."""
        rng = rng or random.Random()
        for n in range(self.max_attempts - 1):
            base = min(self.max_backoff, self.initial_backoff * self.multiplier**n)
            yield base * rng.uniform(1 - self.jitter, 1 + self.jitter)

    @staticmethod
    def should_retry(error: PixelCheckError) -> bool:
        """Only UNAVAILABLE: the call did not happen, or the service asks to come back."""
        return error.code == grpc.StatusCode.UNAVAILABLE

    @staticmethod
    def refused_before_reading(error: PixelCheckError) -> bool:
        """An admission refusal (RESOURCE_EXHAUSTED with RetryInfo): the server stored nothing, so even a
        call that is not idempotent may be sent again after the server's delay."""
        return (error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and error.reason in ADMISSION_REASONS
                and error.retry_after_seconds is not None)


# Refusals UploadImage gives before reading a byte (pixelcheck.scheduling.admission).
ADMISSION_REASONS = frozenset({"ANALYSIS_QUEUE_FULL", "UPLOAD_RATE_LIMITED"})


NO_RETRY = RetryPolicy(max_attempts=1)
