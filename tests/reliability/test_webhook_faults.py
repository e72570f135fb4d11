"""Webhook deliveries survive the failures that lose queued work: a worker SIGKILLed in the middle of an
attempt, and a broker restarted empty while a retry waited in it. The outbox row is the truth; beat's
dispatcher hands the delivery to a new worker under the same webhook-id, and the receiver (checking
signatures with the standardwebhooks reference library) gets it. A webhooks worker that holds attempts in
flight when the broker restarts stays up and goes on delivering. And deliveries have workers of their own:
an inference worker never takes one, so a hanging receiver cannot delay a verdict."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis
from pixelcheck.v1 import common_pb2, webhooks_pb2, webhooks_pb2_grpc
from standardwebhooks import Webhook

from pixelcheck.embedded_redis import EmbeddedRedis
from pixelcheck.keys import RedisKeys
from pixelcheck.settings import Settings
from tests import images
from tests.e2e.conftest import start_live_server
from tests.e2e.flows import new_user
from tests.e2e.uploads import upload, watch
from tests.image_web_server import ImageWebServer, Script
from tests.processes import BeatProcess, WorkerProcess
from tests.reliability.conftest import Launcher

pytestmark = [pytest.mark.reliability, pytest.mark.asyncio(loop_scope="session")]

RECEIVER_HOST = "127.0.0.3"


@pytest_asyncio.fixture(loop_scope="session")
async def receiver() -> AsyncIterator[ImageWebServer]:
    server = await ImageWebServer(RECEIVER_HOST).start()
    yield server
    await server.stop()


def webhook_settings(settings: Settings, **overrides: object) -> Settings:
    """Attempts time out after 2 s, a dead attempt's lease ends 1 s later, beat looks every second (unless
    overrides say otherwise)."""
    quick: dict[str, object] = {"url_fetch_allow": f"{RECEIVER_HOST}/32", "webhook_timeout_seconds": 2.0,
                                "webhook_connect_timeout_seconds": 1.0, "webhook_lease_margin_seconds": 1.0,
                                "webhook_dispatch_interval_seconds": 1.0}
    return settings.with_overrides(**{**quick, **overrides})


async def delivered_once(server, user, endpoint_id: str, receiver: ImageWebServer, path: str,  # type: ignore[no-untyped-def]
                         secret: str, attempts: int) -> None:
    stub = webhooks_pb2_grpc.WebhooksServiceStub(server.channel)

    def requests() -> list:  # type: ignore[type-arg]
        return [r for r in receiver.requests if r.path == path]

    await receiver.wait_for(lambda: len(requests()) >= attempts, timeout=90)
    got = requests()
    assert len({r.headers["webhook-id"] for r in got}) == 1  # every attempt is the same message
    for request in got:
        Webhook(secret).verify(request.body, request.headers)
    deadline = asyncio.get_running_loop().time() + 30.0
    while True:
        [delivery] = (await stub.ListWebhookDeliveries(webhooks_pb2.ListWebhookDeliveriesRequest(
            endpoint_id=endpoint_id), metadata=user.metadata)).deliveries
        if delivery.state == webhooks_pb2.WEBHOOK_DELIVERY_STATE_DELIVERED:
            break
        assert asyncio.get_running_loop().time() < deadline, delivery
        await asyncio.sleep(0.1)
    assert delivery.attempts == attempts and delivery.last_status_code == 200
    assert got[0].headers["webhook-id"] == f"msg_{delivery.id}"


async def register(server, user, url: str) -> webhooks_pb2.CreateWebhookEndpointResponse:  # type: ignore[no-untyped-def]
    return await webhooks_pb2_grpc.WebhooksServiceStub(server.channel).CreateWebhookEndpoint(
        webhooks_pb2.CreateWebhookEndpointRequest(url=url, event_types=[
            webhooks_pb2.WEBHOOK_EVENT_TYPE_ANALYSIS_SUCCEEDED]), metadata=user.metadata)


async def test_a_worker_sigkilled_mid_attempt_loses_no_delivery(
        reliability_settings: Settings, launcher: Launcher, receiver: ImageWebServer) -> None:
    settings = webhook_settings(reliability_settings)
    server = await start_live_server(settings)
    try:
        launcher.keep(BeatProcess(settings, launcher.log("beat"))).start()
        launcher.keep(WorkerProcess(settings, launcher.log("inference"), name="inference")).start()
        doomed = launcher.keep(WorkerProcess(settings, launcher.log("doomed"), name="doomed", webhooks=True)).start()
        user = await new_user(server.auth)
        receiver.routes["/hook"] = Script("hang", 200)  # the first attempt is held open until the kill
        created = await register(server, user, receiver.url("/hook"))
        await upload(server.channel, user.metadata, images.jpeg(seed=81))
        await receiver.wait_for(lambda: "/hook" in receiver.paths_requested(), timeout=90)
        doomed.kill()

        launcher.keep(WorkerProcess(settings, launcher.log("survivor"), name="survivor", webhooks=True)).start()
        await delivered_once(server, user, created.endpoint.id, receiver, "/hook", created.secret, attempts=2)
    finally:
        await server.stop()


async def test_a_retry_lost_with_the_broker_is_still_delivered(
        reliability_settings: Settings, launcher: Launcher, receiver: ImageWebServer, tmp_path: Path) -> None:
    redis_dir = tmp_path / "redis"
    broker = EmbeddedRedis(redis_dir).start()
    port = broker.port
    # The retry waits 4-8 s in the broker (as a countdown task): long enough to take the broker down under it.
    settings = webhook_settings(reliability_settings, redis_url=broker.url, webhook_retry_base_seconds=8.0)
    server = await start_live_server(settings)
    try:
        launcher.keep(WorkerProcess(settings, launcher.log("inference"), name="inference")).start()
        worker = launcher.keep(WorkerProcess(settings, launcher.log("worker-a"), name="a", webhooks=True)).start()
        user = await new_user(server.auth)
        receiver.routes["/flaky"] = Script(500, 200)
        created = await register(server, user, receiver.url("/flaky"))
        await upload(server.channel, user.metadata, images.jpeg(seed=82))
        await receiver.wait_for(lambda: "/flaky" in receiver.paths_requested(), timeout=90)

        worker.kill()  # the worker held the countdown task; the broker held it unacknowledged
        broker.stop()
        broker = EmbeddedRedis(redis_dir, port=port).start()  # back, and empty: the retry's message is gone
        launcher.keep(BeatProcess(settings, launcher.log("beat"))).start()
        launcher.keep(WorkerProcess(settings, launcher.log("worker-b"), name="b", webhooks=True)).start()
        await delivered_once(server, user, created.endpoint.id, receiver, "/flaky", created.secret, attempts=2)
    finally:
        await server.stop()
        broker.stop()


async def test_a_webhooks_worker_with_attempts_in_flight_survives_a_broker_restart(
        reliability_settings: Settings, launcher: Launcher, receiver: ImageWebServer, tmp_path: Path) -> None:
    redis_dir = tmp_path / "redis"
    broker = EmbeddedRedis(redis_dir).start()
    port = broker.port
    # Attempts at /held hang for 8 s: the broker goes away while the worker holds their messages unacknowledged.
    settings = webhook_settings(reliability_settings, redis_url=broker.url, webhook_timeout_seconds=8.0,
                                webhook_retry_base_seconds=1.0)
    server = await start_live_server(settings)
    try:
        launcher.keep(WorkerProcess(settings, launcher.log("inference"), name="inference")).start()
        worker = launcher.keep(WorkerProcess(settings, launcher.log("webhooks"), name="webhooks",
                                             webhooks=True)).start()
        user = await new_user(server.auth)
        receiver.routes["/held"] = script = Script("hang", 200)
        held = await register(server, user, receiver.url("/held"))
        await upload(server.channel, user.metadata, images.jpeg(seed=86))
        await receiver.wait_for(lambda: "/held" in receiver.paths_requested(), timeout=90)

        broker.stop()
        broker = EmbeddedRedis(redis_dir, port=port).start()  # back, and empty
        # A worker that gives up waits for its running attempts first: look once the held attempt is over, and
        # its message acknowledged on the channel of the lost connection.
        deadline = asyncio.get_running_loop().time() + 30.0
        while script.open_now and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(3.0)
        assert worker.running, f"the webhooks worker exited with {worker.process.returncode}"  # type: ignore[union-attr]

        launcher.keep(BeatProcess(settings, launcher.log("beat"))).start()
        receiver.routes["/later"] = Script(200)
        other = await new_user(server.auth)  # another account: /held gets no second delivery
        later = await register(server, other, receiver.url("/later"))
        await upload(server.channel, other.metadata, images.jpeg(seed=87))
        await delivered_once(server, other, later.endpoint.id, receiver, "/later", later.secret, attempts=1)
        await delivered_once(server, user, held.endpoint.id, receiver, "/held", held.secret, attempts=2)
        assert worker.running  # the same worker delivered both: nobody restarted it
    finally:
        await server.stop()
        launcher.stop_all()  # before the broker goes: a worker shuts down quickly only while it can reach it
        broker.stop()


async def test_verdicts_never_wait_for_webhooks_an_inference_worker_leaves_deliveries_to_webhooks_workers(
        reliability_settings: Settings, launcher: Launcher, receiver: ImageWebServer) -> None:
    settings = webhook_settings(reliability_settings)
    server = await start_live_server(settings)
    try:
        launcher.keep(WorkerProcess(settings, launcher.log("inference"), name="inference")).start()
        user = await new_user(server.auth)
        receiver.routes["/slow"] = Script("hang", 200)  # would hold a one-slot worker for every attempt
        created = await register(server, user, receiver.url("/slow"))
        for seed in (83, 84, 85):
            uploaded = await upload(server.channel, user.metadata, images.jpeg(seed=seed))
            events = await watch(server.channel, user.metadata, uploaded.image.id)
            assert events[-1].stage == common_pb2.ANALYSIS_STAGE_DONE
        keys = RedisKeys(settings.redis_key_prefix)
        client = redis.Redis.from_url(settings.redis_url)
        try:  # every delivery waits in the webhook queue, untouched by the inference worker
            deadline = asyncio.get_running_loop().time() + 30.0
            while client.llen(f"{keys.celery_keyprefix}{keys.webhook_queue}") < 3:
                assert asyncio.get_running_loop().time() < deadline, "the deliveries never reached the webhook queue"
                await asyncio.sleep(0.1)
        finally:
            client.close()
        assert "/slow" not in receiver.paths_requested()

        launcher.keep(WorkerProcess(settings, launcher.log("webhooks"), name="webhooks", webhooks=True)).start()
        await receiver.wait_for(lambda: receiver.paths_requested().count("/slow") >= 3, timeout=90)
        stub = webhooks_pb2_grpc.WebhooksServiceStub(server.channel)
        deadline = asyncio.get_running_loop().time() + 60.0
        while True:
            found = (await stub.ListWebhookDeliveries(webhooks_pb2.ListWebhookDeliveriesRequest(
                endpoint_id=created.endpoint.id), metadata=user.metadata)).deliveries
            if len(found) == 3 and all(d.state == webhooks_pb2.WEBHOOK_DELIVERY_STATE_DELIVERED for d in found):
                break
            assert asyncio.get_running_loop().time() < deadline, found
            await asyncio.sleep(0.1)
    finally:
        await server.stop()
