"""The delivery worker's bookkeeping on a real database, Redis and local receiver, with a controlled clock:
the retry schedule, giving up at the end of the window, and disabling an endpoint that never succeeded."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.db import unit_of_work
from pixelcheck.iam.models import User
from pixelcheck.ingestion.url_policy import FetchPolicy
from pixelcheck.keys import RedisKeys
from pixelcheck.webhooks.delivery import DeliveryLimits, InFlightLimiter, WebhookSender
from pixelcheck.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.image_web_server import ImageWebServer, Script

WINDOW = timedelta(hours=24)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Queue:
    def __init__(self) -> None:
        self.sent: list[tuple[str, float]] = []

    def deliver_webhook(self, delivery_id: str, countdown: float = 0.0) -> None:
        self.sent.append((delivery_id, countdown))


@pytest.fixture(scope="module")
def receiver() -> Iterator[ImageWebServer]:
    """The receiver on its own event loop in a thread: the sender under test blocks in asyncio.run()."""
    loop = asyncio.new_event_loop()
    server = ImageWebServer("127.0.0.1")
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    yield server
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def setup(sessions: sessionmaker[Session], receiver: ImageWebServer, path: str, clock: Clock) -> tuple[str, str]:
    owner = secrets.token_hex(16)
    with unit_of_work(sessions) as session:
        session.add(User(id=owner, username=f"u{owner[:8]}", email=f"{owner[:8]}@example.test", display_name="U"))
        endpoint = WebhookEndpoint(owner_id=owner, url=receiver.url(path), event_types=["analysis.succeeded"],
                                   secret="whsec_" + "A" * 43 + "=")
        session.add(endpoint)
        session.flush()
        delivery = WebhookDelivery(endpoint_id=endpoint.id, owner_id=owner, event_type="analysis.succeeded",
                                   subject_id=secrets.token_hex(16), body="{}", next_attempt_time=clock.now,
                                   create_time=clock.now)
        session.add(delivery)
        session.flush()
        return endpoint.id, delivery.id


def sender(sessions: sessionmaker[Session], redis_url: str, prefix: str, clock: Clock, queue: Queue) -> WebhookSender:
    limits = DeliveryLimits(timeout_seconds=2.0, retry_base_seconds=60, retry_max_delay_seconds=4 * 3600,
                            retry_window=WINDOW)
    limiter = InFlightLimiter(redis.Redis.from_url(redis_url), RedisKeys(f"{prefix}-sender-{secrets.token_hex(3)}"), 2)
    return WebhookSender(sessions=sessions, policy=FetchPolicy(allowed_networks=(ip_network("127.0.0.1/32"),)),
                         limits=limits, limiter=limiter, queue=queue, draw=lambda: 1.0, clock=clock)


def row(sessions: sessionmaker[Session], model: type, key: str):  # type: ignore[no-untyped-def]
    with sessions() as session:
        found = session.get(model, key)
        session.expunge_all()
        return found


def test_failures_back_off_then_the_endpoint_is_disabled_at_the_end_of_the_window(
        sessions: sessionmaker[Session], receiver: ImageWebServer, redis_url: str, redis_key_prefix: str) -> None:
    clock, queue = Clock(), Queue()
    receiver.routes["/always-500"] = Script(500)
    endpoint_id, delivery_id = setup(sessions, receiver, "/always-500", clock)
    worker = sender(sessions, redis_url, redis_key_prefix, clock, queue)
    started = clock.now

    assert worker.deliver(delivery_id) == "retry"
    assert queue.sent == [(delivery_id, 60.0)]
    assert worker.deliver(delivery_id) == "skipped"  # not due yet
    delays = []
    while True:
        due = row(sessions, WebhookDelivery, delivery_id).next_attempt_time
        clock.now = max(due, clock.now)
        outcome = worker.deliver(delivery_id)
        if outcome != "retry":
            break
        delays.append(queue.sent[-1][1])
    assert delays[:3] == [120.0, 240.0, 480.0] and max(delays) == 4 * 3600
    assert outcome == "failed" and clock.now - started >= WINDOW
    delivery = row(sessions, WebhookDelivery, delivery_id)
    endpoint = row(sessions, WebhookEndpoint, endpoint_id)
    assert delivery.state == "FAILED" and {a["status"] for a in delivery.attempt_log} == {500}
    assert endpoint.state == "DISABLED" and endpoint.failing_since == started
    assert "Every delivery failed for 24 hours" in endpoint.disabled_reason and "HTTP 500" in endpoint.disabled_reason


def test_a_success_ends_the_failure_streak(sessions: sessionmaker[Session], receiver: ImageWebServer,
                                           redis_url: str, redis_key_prefix: str) -> None:
    clock, queue = Clock(), Queue()
    receiver.routes["/flaky"] = Script(503, 200)
    endpoint_id, delivery_id = setup(sessions, receiver, "/flaky", clock)
    worker = sender(sessions, redis_url, redis_key_prefix, clock, queue)
    assert worker.deliver(delivery_id) == "retry"
    assert row(sessions, WebhookEndpoint, endpoint_id).failing_since == clock.now
    clock.now += timedelta(minutes=2)
    assert worker.deliver(delivery_id) == "delivered"
    assert row(sessions, WebhookEndpoint, endpoint_id).failing_since is None
    delivery = row(sessions, WebhookDelivery, delivery_id)
    assert (delivery.state, delivery.attempts, [a["status"] for a in delivery.attempt_log]) == ("DELIVERED", 2,
                                                                                               [503, 200])
