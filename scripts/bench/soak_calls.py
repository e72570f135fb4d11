"""What every soak actor shares: calls with a deadline whose status codes are counted per method, signed-in
accounts, distinct images made cheaply, and the upload and watch steps."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc import aio
from pixelcheck.v1 import auth_pb2, auth_pb2_grpc, common_pb2, ingestion_pb2_grpc, results_pb2, results_pb2_grpc
from stack import synthetic_jpeg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the test suite's client steps, from a clone
from tests.e2e.flows import bearer, new_user  # noqa: E402
from tests.e2e.uploads import upload_messages  # noqa: E402

T = TypeVar("T")
HANG_MARGIN_SECONDS = 10.0  # a call still running this long after its own deadline counts as hung
TERMINAL = (common_pb2.ANALYSIS_STATE_SUCCEEDED, common_pb2.ANALYSIS_STATE_FAILED)


class Calls:
    """Runs calls with a deadline and counts how each ended, per method and status code ("HUNG": the client's
    deadline did not end it)."""

    def __init__(self) -> None:
        self.codes: Counter[tuple[str, str]] = Counter()
        self.details: dict[tuple[str, str], str] = {}  # the first INTERNAL or UNKNOWN of each method: its details

    async def run(self, method: str, call: Callable[[float], Awaitable[T]], timeout: float = 10.0) -> T:
        """call(timeout) counted under method; raises what it raised (aio.AioRpcError for a failed call)."""
        try:
            result = await asyncio.wait_for(call(timeout), timeout + HANG_MARGIN_SECONDS)
        except aio.AioRpcError as error:
            key = (method, _code_name(error))
            self.codes[key] += 1
            if key[1] in ("INTERNAL", "UNKNOWN"):
                self.details.setdefault(key, f"{error.details()} [{error.debug_error_string()}]"[:300])
            raise
        except TimeoutError:
            self.codes[(method, "HUNG")] += 1
            raise
        self.codes[(method, "OK")] += 1
        return result

    def by_code(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for (_, code), count in self.codes.items():
            totals[code] += count
        return totals


def _code_name(error: aio.AioRpcError) -> str:
    """The status code's name; CLIENT_WRITE_FAILED for grpc's own INTERNAL when a client-streaming call's next
    write lost the race with the server's answer (a refusal sent before the rest of the upload was read): the
    client then reports its failed write instead of the server's status (the server's decision is in the
    audit trail as upload.rejected)."""
    if error.code() == grpc.StatusCode.INTERNAL and "SendMessageOperation" in (error.debug_error_string() or ""):
        return "CLIENT_WRITE_FAILED"
    return str(error.code().name)


@dataclass
class Account:
    """A signed-in user whose tokens the soak keeps fresh."""

    name: str
    user_id: str
    refresh_token: str
    access_token: str
    password: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return bearer(self.access_token)

    async def refresh(self, calls: Calls, channel: aio.Channel) -> None:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        reply = await calls.run("RefreshToken", lambda t: auth.RefreshToken(
            auth_pb2.RefreshTokenRequest(refresh_token=self.refresh_token), timeout=t))
        self.access_token, self.refresh_token = reply.access_token, reply.refresh_token

    async def sign_in_again(self, calls: Calls, channel: aio.Channel) -> None:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        reply = await calls.run("SignIn", lambda t: auth.SignIn(
            auth_pb2.SignInRequest(login=self.name, password=self.password), timeout=t))
        self.access_token, self.refresh_token = reply.access_token, reply.refresh_token


async def new_account(channel: aio.Channel, prefix: str) -> Account:
    user = await new_user(auth_pb2_grpc.AuthServiceStub(channel), prefix)
    return Account(user.username, user.user.id, user.refresh_token, user.access_token, user.password)


class ImagePool:
    """Distinct JPEGs without the cost of encoding each: a few camera-like bases, each copy made unique by a
    comment segment (a new SHA-256, so no upload is answered as a duplicate)."""

    def __init__(self, size: tuple[int, int], bases: int = 6, seed: int = 0) -> None:
        self._bases = [synthetic_jpeg(*size, seed=seed + i) for i in range(bases)]
        self._serial = itertools.count()

    def next(self) -> bytes:
        n = next(self._serial)
        base = self._bases[n % len(self._bases)]
        comment = f"pixelcheck soak image {n} {time.time_ns()}".encode()
        return base[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + base[2:]


@dataclass
class Uploads:
    """Every image id the service accepted, with the account and time (monotonic), and the verdicts seen."""

    accepted: dict[str, tuple[str, float]] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)
    verdict_times: list[float] = field(default_factory=list)
    succeeded: dict[str, list[str]] = field(default_factory=dict)  # account -> image ids seen SUCCEEDED
    unseen: dict[str, float] = field(default_factory=dict)  # image id -> epoch seconds its watch began, for
    # watchers that ended without a verdict (compared with the analysis's finish time after the drain)


async def upload(calls: Calls, channel: aio.Channel, account: Account, data: bytes, name: str,
                 uploads: Uploads) -> str:
    """The image id, or "" when the call failed (counted by Calls; admission refusals also in uploads.refused)."""
    stub = ingestion_pb2_grpc.IngestionServiceStub(channel)
    try:
        reply = await calls.run("UploadImage", lambda t: stub.UploadImage(
            upload_messages(data, name), metadata=account.metadata, timeout=t), timeout=60)
    except aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            uploads.refused[account.name] += 1
        return ""
    except TimeoutError:
        return ""
    uploads.accepted[reply.image.id] = (account.name, time.monotonic())
    return str(reply.image.id)


async def watch(calls: Calls, channel: aio.Channel, account: Account, image_id: str, uploads: Uploads,
                timeout: float = 180.0) -> int:
    """Watch an analysis to its terminal state, reopened after UNAVAILABLE (a server restarting, the database
    away for seconds) until the deadline, as the SDK does; the final state, or 0 when the stream never said."""
    stub = results_pb2_grpc.ResultsServiceStub(channel)
    deadline, began = time.monotonic() + timeout, time.time()

    async def follow(t: float) -> int:
        async for reply in stub.WatchAnalysis(results_pb2.WatchAnalysisRequest(image_id=image_id),
                                              metadata=account.metadata, timeout=t):
            if reply.event.state in TERMINAL:
                return int(reply.event.state)
        return 0

    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 1:
            break
        try:
            state = await calls.run("WatchAnalysis", follow, timeout=remaining)
        except aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL):
                break
            await asyncio.sleep(1)
            continue
        except TimeoutError:
            break
        if state:
            uploads.verdict_times.append(time.monotonic())
            if state == common_pb2.ANALYSIS_STATE_SUCCEEDED:
                uploads.succeeded.setdefault(account.name, []).append(image_id)
            return state
        await asyncio.sleep(1)  # the stream ended without a terminal state: open it again, not at once
    uploads.unseen[image_id] = began
    return 0


async def every(interval: float, stop: asyncio.Event, step: Callable[[], Awaitable[Any]]) -> None:
    """step() every interval seconds until stop is set; a step's own failure never ends the loop."""
    while not stop.is_set():
        began = time.monotonic()
        with contextlib.suppress(aio.AioRpcError, TimeoutError):  # counted by Calls
            await step()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, interval - (time.monotonic() - began)))
