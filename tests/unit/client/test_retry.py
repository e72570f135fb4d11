"""The backoff schedule: exponential, capped, jittered within bounds, and only for UNAVAILABLE."""

from __future__ import annotations

import random

import grpc
import pytest

from pixelcheck.client.errors import PixelCheckError
from pixelcheck.client.retry import NO_RETRY, RetryPolicy


def test_without_jitter_waits_double_until_the_cap():
    policy = RetryPolicy(max_attempts=6, initial_backoff=0.5, multiplier=2.0, max_backoff=3.0, jitter=0.0)
    assert list(policy.delays()) == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_stays_within_its_band_and_varies():
    policy = RetryPolicy(max_attempts=4, initial_backoff=1.0, multiplier=2.0, max_backoff=10.0, jitter=0.2)
    rng = random.Random(7)
    runs = [list(policy.delays(rng)) for _ in range(50)]
    for run in runs:
        for delay, base in zip(run, [1.0, 2.0, 4.0], strict=True):
            assert base * 0.8 <= delay <= base * 1.2
    assert len({run[0] for run in runs}) > 40  # clients do not retry in lockstep


def test_one_attempt_means_no_waits():
    assert list(NO_RETRY.delays()) == []


@pytest.mark.parametrize(("code", "retried"), [
    (grpc.StatusCode.UNAVAILABLE, True),
    (grpc.StatusCode.DEADLINE_EXCEEDED, False),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, False),
    (grpc.StatusCode.INTERNAL, False),
])
def test_only_unavailable_is_retried(code: grpc.StatusCode, retried: bool):
    assert RetryPolicy.should_retry(PixelCheckError(code, "x")) is retried


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"jitter": 1.0}, {"jitter": -0.1}])
def test_nonsense_policies_are_refused(kwargs: dict[str, float]):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
