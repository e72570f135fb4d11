#!/usr/bin/env python3
"""ImportImage vs UploadImage, and webhook delivery latency after a verdict.

1. Throughput: the same distinct ~1 MP JPEGs sent once through UploadImage (1 MiB chunks) and once through
   ImportImage from a local HTTP server (a ThreadingHTTPServer in this process on 127.0.0.3, let in with
   PIXELCHECK_URL_FETCH_ALLOW), by two users so dedupe never short-cuts, at 1 and 4 concurrent calls.
   Baseline: UploadImage of the same bytes in the same run. No worker runs: this is ingestion only.
2. Webhook latency: with one worker and one webhooks worker, images uploaded one after another; for each,
   the time from the analysis's finish_time (the verdict committed) to the receiver getting the signed POST,
   next to the time from finish_time to the WatchAnalysis stream's terminal event (the baseline: what a
   client holding a stream open sees).

    .venv/bin/python scripts/bench/url_import.py [--images 40] [--verdicts 40] [--database-url URL] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from grpc import aio
from pixelcheck.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    ingestion_pb2,
    ingestion_pb2_grpc,
    results_pb2,
    results_pb2_grpc,
    webhooks_pb2,
    webhooks_pb2_grpc,
)
from stack import (
    MIB,
    PASSWORD,
    add_stack_arguments,
    distribution,
    percentile,
    pixelcheck_stack,
    print_table,
    synthetic_jpeg,
)

HOST = "127.0.0.3"
SIZE = (1152, 864)
Metadata = tuple[tuple[str, str], ...]


class LocalWeb:
    """Serves /img/<n> from memory and records when each POST to /hook arrived (epoch seconds)."""

    def __init__(self, images: list[bytes]) -> None:
        web = self
        self.images = images
        self.hooks: list[tuple[float, bytes]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                data = web.images[int(self.path.rsplit("/", 1)[1])]
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                web.hooks.append((time.time(), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"


async def second_user(channel: aio.Channel) -> Metadata:
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    name = f"bench_{secrets.token_hex(4)}"
    await auth.SignUp(auth_pb2.SignUpRequest(username=name, email=f"{name}@example.org", password=PASSWORD))
    token = (await auth.SignIn(auth_pb2.SignInRequest(login=name, password=PASSWORD))).access_token
    return (("authorization", f"Bearer {token}"),)


async def run_calls(count: int, concurrency: int, call) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    """Wall seconds and per-call ms of `count` calls, `concurrency` at a time."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    times: list[float] = []

    async def lane() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            started = time.perf_counter()
            await call(i)
            times.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - started, times


async def throughput(address: str, uploader: Metadata, count: int) -> list[list[str]]:
    rows = []
    async with aio.insecure_channel(address) as channel:
        stub = ingestion_pb2_grpc.IngestionServiceStub(channel)
        for concurrency in (1, 4):
            images = [synthetic_jpeg(*SIZE, seed=concurrency * 1000 + i) for i in range(count)]
            web = LocalWeb(images)
            importer = await second_user(channel)
            total_mib = sum(len(d) for d in images) / MIB

            async def upload(i: int, images: list[bytes] = images) -> None:
                data = images[i]
                messages = [ingestion_pb2.UploadImageRequest(metadata=ingestion_pb2.UploadMetadata(
                    filename=f"u{i}.jpg", size_bytes=len(data))),
                    *(ingestion_pb2.UploadImageRequest(chunk=data[o:o + MIB]) for o in range(0, len(data), MIB))]
                await stub.UploadImage(iter(messages), metadata=uploader)

            async def imported(i: int, web: LocalWeb = web, importer: Metadata = importer) -> None:
                request = ingestion_pb2.ImportImageRequest(url=web.url(f"/img/{i}"))
                await stub.ImportImage(request, metadata=importer)

            up_wall, up_times = await run_calls(count, concurrency, upload)
            im_wall, im_times = await run_calls(count, concurrency, imported)
            web.server.shutdown()
            for name, wall, times in (("UploadImage (baseline)", up_wall, up_times),
                                      ("ImportImage", im_wall, im_times)):
                rows.append([name, str(concurrency), f"{count / wall:.1f}", f"{total_mib / wall:.1f}",
                             distribution(times), f"{(up_wall / im_wall) * 100:.0f}%" if name == "ImportImage" else ""])
    return rows


async def webhook_latency(address: str, metadata: Metadata, count: int) -> tuple[list[float], list[float]]:
    web = LocalWeb([])
    hooks, streams = [], []
    async with aio.insecure_channel(address) as channel:
        await webhooks_pb2_grpc.WebhooksServiceStub(channel).CreateWebhookEndpoint(
            webhooks_pb2.CreateWebhookEndpointRequest(url=web.url("/hook"), event_types=[
                webhooks_pb2.WEBHOOK_EVENT_TYPE_ANALYSIS_SUCCEEDED]), metadata=metadata)
        ingestion = ingestion_pb2_grpc.IngestionServiceStub(channel)
        results = results_pb2_grpc.ResultsServiceStub(channel)
        for i in range(count):
            data = synthetic_jpeg(*SIZE, seed=50_000 + i)
            messages = [ingestion_pb2.UploadImageRequest(metadata=ingestion_pb2.UploadMetadata(
                filename=f"v{i}.jpg", size_bytes=len(data))),
                *(ingestion_pb2.UploadImageRequest(chunk=data[o:o + MIB]) for o in range(0, len(data), MIB))]
            image = (await ingestion.UploadImage(iter(messages), metadata=metadata)).image
            seen = 0.0
            async for response in results.WatchAnalysis(results_pb2.WatchAnalysisRequest(image_id=image.id),
                                                        metadata=metadata, timeout=120):
                if response.event.state in (common_pb2.ANALYSIS_STATE_SUCCEEDED, common_pb2.ANALYSIS_STATE_FAILED):
                    seen = time.time()
            result = (await results.GetResult(results_pb2.GetResultRequest(image_id=image.id),
                                              metadata=metadata)).result
            finished = result.finish_time.seconds + result.finish_time.nanos / 1e9
            deadline = time.monotonic() + 30
            while len(web.hooks) <= i and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            if len(web.hooks) <= i:
                raise RuntimeError(f"no webhook for image {i} within 30 s")
            hooks.append((web.hooks[i][0] - finished) * 1000)
            streams.append((seen - finished) * 1000)
    web.server.shutdown()
    return hooks, streams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=40, help="imports (and uploads) per concurrency")
    parser.add_argument("--verdicts", type=int, default=40, help="verdicts timed for the webhook latency")
    add_stack_arguments(parser)
    args = parser.parse_args()
    overrides = {"url_fetch_allow": f"{HOST}/32", "url_import_rate_limit": 100_000}
    with pixelcheck_stack(args, **overrides) as stack:
        rows = asyncio.run(throughput(stack.address, stack.metadata, args.images))
    print_table(f"ImportImage vs UploadImage, {SIZE[0]}x{SIZE[1]} JPEGs (~{len(synthetic_jpeg(*SIZE, 1)) // 1024} KiB)",
                ["call", "concurrency", "images/s", "MiB/s", "ms p50 / p95 / p99", "import vs upload"], rows)
    with pixelcheck_stack(args, workers=1, webhook_workers=1, **overrides) as stack:
        hooks, streams = asyncio.run(webhook_latency(stack.address, stack.metadata, args.verdicts))
    print_table("Verdict -> notification latency (ms after the analysis's finish_time)",
                ["path", "n", "p50", "p95", "max"],
                [["WatchAnalysis terminal event (baseline)", str(len(streams)), f"{percentile(streams, 50):.1f}",
                  f"{percentile(streams, 95):.1f}", f"{max(streams):.1f}"],
                 ["webhook POST received", str(len(hooks)), f"{percentile(hooks, 50):.1f}",
                  f"{percentile(hooks, 95):.1f}", f"{max(hooks):.1f}"]])


if __name__ == "__main__":
    main()
