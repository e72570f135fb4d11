"""The reconciler on a real database and Redis: when Redis loses its data, every analysis still QUEUED is
queued again on the next pass, not a stale period later."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator

import pytest
import redis

from pixelcheck.bootstrap import Container, build_container
from pixelcheck.db import new_id
from pixelcheck.ingestion.receiving import ReceivedUpload
from pixelcheck.ingestion.validation import UploadMetadata
from pixelcheck.settings import Settings
from pixelcheck.worker import broker_lists
from tests import images
from tests.integration.test_ingestion import received, signed_up


@pytest.fixture
def container(base_settings: Settings, sessions: object) -> Iterator[Container]:  # sessions: the schema is there
    # Its own key prefix (its own fair queue and broker lists), and a stale period no test outlasts.
    settings = base_settings.with_overrides(redis_key_prefix=f"reconcile-{secrets.token_hex(4)}",
                                            analysis_stale_seconds=3600)
    built = build_container(settings, role="worker")
    yield built
    forget_everything(built.redis, settings.redis_key_prefix)
    built.close()


def forget_everything(client: redis.Redis, prefix: str) -> None:
    """What a Redis restart without persistence does to this deployment's keys."""
    keys = list(client.scan_iter(f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)


def broker_tokens(container: Container) -> int:
    return sum(int(container.redis.llen(name)) for name in broker_lists(container.keys).values())


def drained(container: Container) -> list[str]:
    popped = []
    while (item := container.queue.fair.pop()) is not None:
        popped.append(item.image_id)
        container.queue.fair.done(item)
    return popped


def test_analyses_queued_before_redis_lost_its_data_are_queued_again_on_the_next_pass(container: Container) -> None:
    principal = signed_up(container)
    accepted = []
    for seed in range(3):
        view, _ = container.ingestion.accept(principal, received(images.jpeg(seed=300 + seed), new_id()))
        accepted.append(view.id)
    container.reconciler.run()  # the first pass on this Redis: it marks the fair queue kept
    assert container.queue.fair.pending(principal.user_id)[0] == 3

    forget_everything(container.redis, container.keys.prefix)
    assert container.queue.fair.pending(principal.user_id)[0] == 0 and broker_tokens(container) == 0

    container.reconciler.run()  # seconds later, far inside the stale period
    assert container.queue.fair.pending(principal.user_id)[0] == 3
    assert set(accepted) <= set(drained(container))  # the shared database may hold other tests' QUEUED analyses too
    assert broker_tokens(container) >= 3  # a RUN_NEXT token for each


def test_a_pass_while_redis_kept_its_data_queues_nothing_that_waits_inside_the_stale_period(
        container: Container) -> None:
    principal = signed_up(container)
    container.reconciler.run()
    view, _ = container.ingestion.accept(principal, received(images.jpeg(seed=310), new_id()))
    tokens = broker_tokens(container)
    container.reconciler.run()
    container.reconciler.run()
    assert container.queue.fair.pending(principal.user_id)[0] == 1
    assert broker_tokens(container) == tokens  # no second token for the analysis that still waits
    assert view.id in drained(container)


def test_analyses_queued_again_after_redis_lost_its_data_run_before_those_accepted_since(
        container: Container) -> None:
    principal = signed_up(container)
    before = [container.ingestion.accept(principal, received(images.jpeg(seed=320 + n), new_id()))[0].id
              for n in range(3)]
    container.reconciler.run()
    forget_everything(container.redis, container.keys.prefix)
    after, _ = container.ingestion.accept(principal, received(images.jpeg(seed=330), new_id()))

    container.reconciler.run()
    mine = set(before) | {after.id}
    assert [i for i in drained(container) if i in mine] == [*before, after.id]


def test_an_animation_queued_again_after_redis_lost_its_data_keeps_its_cost_and_admission_counts_it(
        container: Container) -> None:
    principal = signed_up(container)
    gif = images.animated("GIF", count=12, duration_ms=250)  # 3 s: 3 frames read, 3 turns
    sha256 = hashlib.sha256(gif).hexdigest()
    upload = ReceivedUpload(metadata=UploadMetadata(filename="loop.gif", size_bytes=len(gif), content_type="image/gif",
                                                    sha256=sha256, request_id=new_id()), data=gif, sha256=sha256)
    view, _ = container.ingestion.accept(principal, upload)
    container.reconciler.run()
    assert container.queue.fair.pending(principal.user_id)[0] == 3
    assert container.results.pending_count(principal.user_id) == 3  # the database's count, for admission

    forget_everything(container.redis, container.keys.prefix)
    container.reconciler.run()
    assert container.queue.fair.pending(principal.user_id)[0] == 3
    costs = {}
    while (item := container.queue.fair.pop()) is not None:
        costs[item.image_id] = item.cost
        container.queue.fair.done(item)
    assert costs[view.id] == 3
