"""The soak's client actors, each on a channel of its own so connections spread over the server processes:
the flooding account's paced uploads and watchers, the quiet account's one-at-a-time uploads, URL imports
with three webhook endpoints (normal, slow, failing), requested region maps, single and batch reports,
sign-ins, token refreshes and ListResults paging. Every loop ends when `stop` is set."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc import aio
from pixelcheck.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    ingestion_pb2,
    ingestion_pb2_grpc,
    reports_pb2,
    reports_pb2_grpc,
    results_pb2,
    results_pb2_grpc,
    webhooks_pb2,
    webhooks_pb2_grpc,
)
from soak_calls import Account, Calls, ImagePool, Uploads, every, upload, watch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the test suite's servers and steps, from a clone
from tests.e2e.flows import failure_of  # noqa: E402
from tests.image_web_server import Exchange, ImageWebServer  # noqa: E402

MAX_WATCHERS = 200  # the flood's open WatchAnalysis streams at most
FLOOD_CLIENTS = 8  # channels the flood's calls are spread over
MAX_UPLOADS_IN_FLIGHT = 16  # with the watchers: the flood's calls in flight, beyond which the pacer skips a beat
SLOW_RECEIVER_SECONDS = 2.0
REPORT_KINDS = (("single PDF", 1, common_pb2.REPORT_FORMAT_PDF), ("batch CSV", 5, common_pb2.REPORT_FORMAT_CSV),
                ("batch PDF", 5, common_pb2.REPORT_FORMAT_PDF))


@dataclass
class Traffic:
    address: str
    calls: Calls
    pool: ImagePool
    stop: asyncio.Event
    uploads: Uploads = field(default_factory=Uploads)
    quiet: list[tuple[float, float]] = field(default_factory=list)  # (start, end) monotonic of each verdict
    quiet_uploads: dict[float, tuple[str, float]] = field(default_factory=dict)  # start -> image id, upload seconds
    maps: list[float] = field(default_factory=list)  # first GetRegionMap -> READY, seconds
    counts: Counter[str] = field(default_factory=Counter)  # watchers, maps, reports, pages ... by outcome
    received: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # route -> webhook-ids

    def channel(self) -> aio.Channel:
        return aio.insecure_channel(self.address)


async def flood(t: Traffic, account: Account, rate: float, watch_every: int = 3) -> None:
    """Uploads at `rate` per second, every watch_every-th one followed by a WatchAnalysis to its verdict, from
    FLOOD_CLIENTS channels by turns (a flood comes from many clients; one channel would put all of it on
    whichever server process its one connection reaches)."""
    async with contextlib.AsyncExitStack() as stack:
        channels = [await stack.enter_async_context(t.channel()) for _ in range(FLOOD_CLIENTS)]
        tasks: set[asyncio.Task[None]] = set()
        watchers = 0

        async def one(n: int) -> None:
            nonlocal watchers
            channel = channels[n % len(channels)]
            image_id = await upload(t.calls, channel, account, t.pool.next(), f"flood-{n}.jpg", t.uploads)
            if image_id and n % watch_every == 0 and watchers < MAX_WATCHERS:
                watchers += 1
                state = await watch(t.calls, channel, account, image_id, t.uploads)
                watchers -= 1
                t.counts["watchers ended with a verdict" if state else "watchers without a verdict"] += 1

        began = time.monotonic()
        for n in itertools.count():
            if await _stopped_within(t.stop, began + n / rate - time.monotonic()):
                break
            if sum(1 for task in tasks if not task.done()) >= MAX_UPLOADS_IN_FLIGHT + MAX_WATCHERS:
                t.counts["flood uploads skipped (client behind)"] += 1
                continue
            task = asyncio.create_task(one(n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)


async def quiet(t: Traffic, account: Account, count: int | None = None) -> list[tuple[float, float]]:
    """Uploads one image at a time, each watched to its verdict: (start, end) of each, until stop (kept in
    t.quiet) or until count of them."""
    found: list[tuple[float, float]] = [] if count is not None else t.quiet
    async with t.channel() as channel:
        for n in itertools.count():
            if (count is not None and len(found) >= count) or (count is None and t.stop.is_set()) or n > 10_000:
                return found
            began = time.monotonic()
            image_id = await upload(t.calls, channel, account, t.pool.next(), f"quiet-{n}.jpg", t.uploads)
            uploaded = time.monotonic()
            if image_id and await watch(t.calls, channel, account, image_id, t.uploads, timeout=120):
                found.append((began, time.monotonic()))
                t.quiet_uploads[began] = (image_id, uploaded - began)
            elif await _stopped_within(t.stop, 1.0) and count is None:
                return found
    return found


async def region_maps(t: Traffic, account: Account, interval: float) -> None:
    """Every interval, GetRegionMap of the flood's latest verdict, polled (after each RetryInfo) until READY."""
    asked: set[str] = set()
    async with t.channel() as channel:
        stub = results_pb2_grpc.ResultsServiceStub(channel)

        async def one() -> None:
            fresh = [i for i in t.uploads.succeeded.get(account.name, [])[-10:] if i not in asked]
            if not fresh:
                return
            asked.add(fresh[-1])
            request = results_pb2.GetRegionMapRequest(image_id=fresh[-1])
            began = time.monotonic()
            while time.monotonic() - began < 60:
                try:
                    await t.calls.run("GetRegionMap", lambda s: stub.GetRegionMap(
                        request, metadata=account.metadata, timeout=s))
                    t.maps.append(time.monotonic() - began)
                    return
                except aio.AioRpcError as error:
                    delay = 1.0
                    if error.code() == grpc.StatusCode.FAILED_PRECONDITION:  # REGION_MAP_NOT_READY
                        delay = failure_of(error).retry_delay_seconds or 0.5
                    await asyncio.sleep(min(delay, 2.0))
            t.counts["region maps not READY within 60 s"] += 1

        await every(interval, t.stop, one)


async def reports(t: Traffic, account: Account, image_ids: list[str], interval: float) -> None:
    """Every interval a report, by turns single PDF, batch CSV, batch PDF: created, polled to READY, downloaded."""
    kinds = itertools.cycle(REPORT_KINDS)
    async with t.channel() as channel:
        stub = reports_pb2_grpc.ReportsServiceStub(channel)

        async def one() -> None:
            kind, size, report_format = next(kinds)
            created = await t.calls.run("CreateReport", lambda s: stub.CreateReport(reports_pb2.CreateReportRequest(
                image_ids=image_ids[:size], format=report_format), metadata=account.metadata, timeout=s))
            began, state = time.monotonic(), common_pb2.REPORT_STATE_UNSPECIFIED
            while time.monotonic() - began < 90 and state not in (common_pb2.REPORT_STATE_READY,
                                                                   common_pb2.REPORT_STATE_FAILED):
                await asyncio.sleep(0.5)
                with contextlib.suppress(aio.AioRpcError, TimeoutError):  # counted by Calls
                    state = (await t.calls.run("GetReport", lambda s: stub.GetReport(reports_pb2.GetReportRequest(
                        report_id=created.report.id), metadata=account.metadata, timeout=s))).report.state
            if state != common_pb2.REPORT_STATE_READY:
                t.counts[f"{kind} reports not READY within 90 s"] += 1
                return

            async def download(s: float) -> bool:
                messages = [m async for m in stub.DownloadReport(reports_pb2.DownloadReportRequest(
                    report_id=created.report.id), metadata=account.metadata, timeout=s)]
                return sum(len(m.chunk) for m in messages[1:]) == messages[0].header.size_bytes

            complete = await t.calls.run("DownloadReport", download, timeout=30)
            t.counts[f"{kind} reports READY and downloaded whole" if complete else f"{kind} reports cut short"] += 1

        await every(interval, t.stop, one)


async def start_receivers(t: Traffic) -> ImageWebServer:
    """The local HTTP server for URL imports and the three webhook receivers; each records the webhook-ids."""
    web = await ImageWebServer("127.0.0.1").start()

    def receiver(name: str, status: int, delay: float = 0.0):  # type: ignore[no-untyped-def]
        async def route(exchange: Exchange) -> None:
            t.received[name].append(exchange.request.headers.get("webhook-id", ""))
            if delay:
                await asyncio.sleep(delay)
            await exchange.respond(status, b"", "text/plain")
        return route

    web.routes.update({"/hook/normal": receiver("normal", 204), "/hook/failing": receiver("failing", 500),
                       "/hook/slow": receiver("slow", 204, SLOW_RECEIVER_SECONDS)})
    return web


async def register_webhooks(t: Traffic, web: ImageWebServer, account: Account) -> dict[str, str]:
    """Endpoint id of each receiver, registered for analysis.succeeded and analysis.failed."""
    ids = {}
    async with t.channel() as channel:
        stub = webhooks_pb2_grpc.WebhooksServiceStub(channel)
        for name in ("normal", "slow", "failing"):
            reply = await t.calls.run("CreateWebhookEndpoint", lambda s, n=name: stub.CreateWebhookEndpoint(
                webhooks_pb2.CreateWebhookEndpointRequest(url=web.url(f"/hook/{n}"), event_types=[
                    webhooks_pb2.WEBHOOK_EVENT_TYPE_ANALYSIS_SUCCEEDED,
                    webhooks_pb2.WEBHOOK_EVENT_TYPE_ANALYSIS_FAILED]), metadata=account.metadata, timeout=s))
            ids[name] = reply.endpoint.id
    return ids


async def url_imports(t: Traffic, web: ImageWebServer, account: Account, interval: float) -> None:
    """Every interval an ImportImage of a fresh image served by the local HTTP server."""
    serial = itertools.count()
    async with t.channel() as channel:
        stub = ingestion_pb2_grpc.IngestionServiceStub(channel)

        async def one() -> None:
            path, data = f"/img/{next(serial)}.jpg", t.pool.next()

            async def serve(exchange: Exchange) -> None:
                await exchange.respond(200, data)

            web.routes[path] = serve
            try:
                reply = await t.calls.run("ImportImage", lambda s: stub.ImportImage(ingestion_pb2.ImportImageRequest(
                    url=web.url(path)), metadata=account.metadata, timeout=s), timeout=30)
                t.uploads.accepted[reply.image.id] = (account.name, time.monotonic())
            finally:
                web.routes.pop(path, None)

        await every(interval, t.stop, one)


async def accounts_and_listing(t: Traffic, reader: Account, listed: Account, interval: float) -> None:
    """Every interval: the reader signs in, refreshes, reads its account; the flood account's results are
    listed page by page (up to 5 pages of 50)."""
    async with t.channel() as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        results = results_pb2_grpc.ResultsServiceStub(channel)

        async def one() -> None:
            await reader.sign_in_again(t.calls, channel)
            await reader.refresh(t.calls, channel)
            await t.calls.run("GetCurrentUser", lambda s: auth.GetCurrentUser(
                auth_pb2.GetCurrentUserRequest(), metadata=reader.metadata, timeout=s))
            token = ""
            for _ in range(5):
                page = await t.calls.run("ListResults", lambda s: results.ListResults(results_pb2.ListResultsRequest(
                    page_size=50, page_token=token), metadata=listed.metadata, timeout=s))
                t.counts["ListResults pages read"] += 1
                if not (token := page.next_page_token):
                    break

        await every(interval, t.stop, one)


async def keep_tokens_fresh(t: Traffic, accounts: list[Account], interval: float = 300.0) -> None:
    """RefreshToken for every actor's account, at once and then every interval (access tokens last 15 min)."""
    async with t.channel() as channel:
        async def refresh_all() -> None:
            for account in accounts:
                with contextlib.suppress(aio.AioRpcError, TimeoutError):  # counted by Calls
                    await account.refresh(t.calls, channel)

        await every(interval, t.stop, refresh_all)


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Wait up to seconds; True when stop is (or became) set."""
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
