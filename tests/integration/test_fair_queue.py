"""The fair queue and admission control on a real Redis: principals take turns by weight, a backlog delays
only its owner, an account's only picture runs beside a backlog at full priority (the prompt lane), and
uploads past a cap or a rate are refused with a retry delay."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from pixelcheck.errors import TooLarge, Unavailable
from pixelcheck.iam.principal import Principal
from pixelcheck.keys import RedisKeys
from pixelcheck.scheduling.admission import Admission
from pixelcheck.scheduling.dispatch import FairDispatcher
from pixelcheck.scheduling.fair_queue import ANALYSIS, REGION_MAP, FairQueue
from pixelcheck.scheduling.policy import SchedulingPolicy, Share, UploadRate
from pixelcheck.scheduling.prompt_lane import can_lower_threads, thread_nice
from pixelcheck.settings import Settings
from pixelcheck.worker import ANALYSIS_PRIORITY, RUN_NEXT, TaskQueue, broker_lists, make_celery


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
def queue(client: redis.Redis, redis_key_prefix: str) -> FairQueue:
    return FairQueue(client, f"{redis_key_prefix}-fq-{secrets.token_hex(3)}", running_timeout_seconds=60)


def drain(queue: FairQueue) -> list[str]:
    order = []
    while (item := queue.pop()) is not None:
        order.append(f"{item.principal_id}:{item.image_id}")
        queue.done(item)
    return order


def test_a_late_principal_takes_turns_with_a_backlog_instead_of_waiting_behind_it(queue: FairQueue) -> None:
    a, b = Share("alice"), Share("bob")
    for n in range(6):
        queue.push(a, ANALYSIS, f"a{n}")
    first = queue.pop()
    assert first is not None and first.image_id == "a0"
    queue.done(first)
    queue.push(b, ANALYSIS, "b0")
    queue.push(b, ANALYSIS, "b1")
    assert drain(queue) == ["bob:b0", "alice:a1", "bob:b1", "alice:a2", "alice:a3", "alice:a4", "alice:a5"]


def test_a_principal_with_twice_the_weight_gets_two_turns_per_round(queue: FairQueue) -> None:
    for n in range(4):
        queue.push(Share("svc", "SERVICE", 2.0), ANALYSIS, f"s{n}")
        queue.push(Share("ann"), ANALYSIS, f"u{n}")
    order = [entry.split(":")[0] for entry in drain(queue)]
    assert order[:6].count("svc") == 4 and order[:6].count("ann") == 2


def test_an_item_queued_again_with_its_first_enqueue_time_goes_ahead_of_later_ones(queue: FairQueue) -> None:
    share = Share("ola")
    queue.push(share, ANALYSIS, "new")
    queue.push(share, ANALYSIS, "lost", enqueued_ms=1_000)
    assert drain(queue) == ["ola:lost", "ola:new"]


def test_an_item_already_waiting_is_not_queued_twice_and_a_requeued_item_keeps_its_place(queue: FairQueue) -> None:
    share = Share("carol")
    assert queue.push(share, ANALYSIS, "x") and not queue.push(share, ANALYSIS, "x")
    queue.push(share, REGION_MAP, "y")
    item = queue.pop()
    assert item is not None and (item.kind, item.image_id, item.principal_class) == (ANALYSIS, "x", "USER")
    assert queue.pending("carol") == (2, 1)  # one running, one waiting; one waiting service-wide
    queue.requeue(item)
    assert drain(queue) == ["carol:x", "carol:y"]
    assert queue.pending("carol") == (0, 0)


def test_depths_count_waiting_items_per_principal_class_with_the_oldest_age(queue: FairQueue) -> None:
    queue.push(Share("pro", "PROFESSIONAL", 2.0), ANALYSIS, "p")
    queue.push(Share("dan"), ANALYSIS, "d")
    depths = {d.principal_class: d for d in queue.depths()}
    assert depths["PROFESSIONAL"].waiting == 1 and depths["USER"].waiting == 1 and depths["SERVICE"].waiting == 0
    assert depths["USER"].oldest_age_seconds >= 0.0 and queue.waiting() == 2


def policy(cap: int = 0, service_cap: int = 0, rate: UploadRate | None = None) -> SchedulingPolicy:
    names = ("USER", "PROFESSIONAL", "ADMIN", "SERVICE")
    return SchedulingPolicy(weights=dict.fromkeys(names, 1.0), pending_caps=dict.fromkeys(names, cap),
                            service_pending_cap=service_cap, upload_rates=dict.fromkeys(names, rate),
                            queue_full_retry_seconds=3.0)


def user(name: str) -> Principal:
    return Principal(user_id=name, roles=frozenset({"USER"}))


def test_a_principal_at_its_cap_of_queued_and_running_analyses_is_refused_with_a_retry_delay(
        client: redis.Redis, queue: FairQueue, redis_key_prefix: str) -> None:
    refusals: list[str] = []
    admission = Admission(client, redis_key_prefix, policy(cap=2), queue, on_refusal=refusals.append)
    queue.push(Share("erin"), ANALYSIS, "e1")
    admission.admit_upload(user("erin"))
    queue.push(Share("erin"), ANALYSIS, "e2")
    with pytest.raises(TooLarge) as refused:
        admission.admit_upload(user("erin"))
    assert refused.value.reason == "ANALYSIS_QUEUE_FULL" and refused.value.retry_after_seconds == 3.0
    assert refused.value.metadata == {"scope": "principal", "limit": "2", "pending": "2"}
    admission.admit_upload(user("frank"))  # another principal is not affected
    assert refusals == ["ANALYSIS_QUEUE_FULL"]


def test_while_the_fair_queue_is_refilled_after_redis_lost_its_data_the_cap_counts_the_stored_analyses(
        client: redis.Redis, queue: FairQueue, redis_key_prefix: str) -> None:
    stored = {"kim": 2}  # what the database holds QUEUED or RUNNING; Redis lost all of it
    asked: list[str] = []

    def stored_pending(principal_id: str) -> int:
        asked.append(principal_id)
        return stored.get(principal_id, 0)

    admission = Admission(client, redis_key_prefix, policy(cap=2), queue, stored_pending=stored_pending)
    with pytest.raises(TooLarge) as refused:
        admission.admit_upload(user("kim"))
    assert refused.value.metadata == {"scope": "principal", "limit": "2", "pending": "2"}
    admission.admit_upload(user("lou"))  # nothing stored for lou
    queue.mark_kept()  # the reconciler queued everything again: Redis's own count holds from here
    admission.admit_upload(user("kim"))
    assert asked == ["kim", "lou"]


def test_the_service_wide_cap_refuses_everyone_once_that_many_analyses_wait(
        client: redis.Redis, queue: FairQueue, redis_key_prefix: str) -> None:
    admission = Admission(client, redis_key_prefix, policy(service_cap=2), queue)
    queue.push(Share("gina"), ANALYSIS, "g1")
    queue.push(Share("hal"), ANALYSIS, "h1")
    with pytest.raises(TooLarge) as refused:
        admission.admit_upload(user("ivan"))
    assert refused.value.reason == "ANALYSIS_QUEUE_FULL" and refused.value.metadata["scope"] == "service"


def test_uploads_past_the_rate_bucket_are_refused_until_the_next_token_arrives(
        client: redis.Redis, queue: FairQueue, redis_key_prefix: str) -> None:
    prefix = f"{redis_key_prefix}-rate-{secrets.token_hex(3)}"
    admission = Admission(client, prefix, policy(rate=UploadRate(per_second=0.5, burst=2)), queue)
    other_process = Admission(client, prefix, policy(rate=UploadRate(per_second=0.5, burst=2)), queue)
    admission.admit_upload(user("jo"))
    other_process.admit_upload(user("jo"))  # one bucket for every server process
    with pytest.raises(TooLarge) as refused:
        admission.admit_upload(user("jo"))
    assert refused.value.reason == "UPLOAD_RATE_LIMITED"
    assert refused.value.retry_after_seconds is not None and 0 < refused.value.retry_after_seconds <= 2.0
    admission.admit_upload(user("kim"))  # buckets are per principal


def test_a_worker_puts_an_item_back_in_its_place_when_the_database_is_unavailable(queue: FairQueue) -> None:
    ran: list[str] = []
    waits: list[tuple[str, float]] = []

    def analyse(image_id: str) -> str:
        if not ran:
            ran.append("refused")
            raise Unavailable("database down")
        ran.append(image_id)
        return "succeeded"

    dispatcher = FairDispatcher(queue, analyse=analyse, map_regions=lambda i: "ready", when_idle=lambda: None,
                                observe_wait=lambda name, seconds: waits.append((name, seconds)))
    queue.push(Share("lee"), ANALYSIS, "l1")
    queue.push(Share("lee"), REGION_MAP, "l2")
    with pytest.raises(Unavailable):
        dispatcher.run_next()
    assert queue.pending("lee") == (2, 2)  # l1 waits again, not running
    assert dispatcher.run_next() == "succeeded" and ran == ["refused", "l1"]
    assert dispatcher.run_next() == "ready" and dispatcher.run_next() == "empty"
    assert queue.pending("lee") == (0, 0) and [name for name, _ in waits] == ["USER"] * 3


def test_re_queueing_an_analysis_that_still_waits_sends_no_second_token_so_the_broker_stays_bounded(
        base_settings: Settings, client: redis.Redis) -> None:
    # The reconciler re-queues every analysis that has waited longer than the stale period; while a backlog
    # lasts that is the same waiting analyses on every pass, and one token each per pass grew the broker.
    settings = base_settings.with_overrides(redis_key_prefix=f"tokens-{secrets.token_hex(4)}")
    app = make_celery(settings)
    queue = TaskQueue(app, FairQueue(client, settings.redis_key_prefix, running_timeout_seconds=60))
    lists = broker_lists(RedisKeys(settings.redis_key_prefix))

    def tokens() -> int:
        return sum(int(client.llen(name)) for name in lists.values())

    try:
        queue.analyze_image("waiting", Share("carol"))
        assert tokens() == 1
        for _ in range(3):  # three reconciler passes over the same backlog
            assert queue.reanalyze_image("waiting", "carol") is False
        assert tokens() == 1
        popped = queue.fair.pop()  # a worker took it and died before finishing: lost, not waiting
        assert popped is not None and popped.image_id == "waiting"
        assert queue.reanalyze_image("waiting", "carol") is True and tokens() == 2
    finally:
        client.delete(*lists.values())
        app.close()


def test_an_animation_takes_as_many_turns_as_the_frames_it_reads(queue: FairQueue) -> None:
    queue.push(Share("anim"), ANALYSIS, "clip", cost=4)
    queue.push(Share("anim"), ANALYSIS, "photo")
    for n in range(5):
        queue.push(Share("photos"), ANALYSIS, f"p{n}")
    # Equal virtual times go by name ("anim" first): the clip's four turns let four photos through.
    assert drain(queue) == ["anim:clip", "photos:p0", "photos:p1", "photos:p2", "photos:p3", "anim:photo",
                            "photos:p4"]


def test_a_requeued_animation_keeps_its_cost(queue: FairQueue) -> None:
    queue.push(Share("gif"), ANALYSIS, "clip", cost=3)
    item = queue.pop()
    assert item is not None and item.cost == 3
    queue.requeue(item)
    again = queue.pop()
    assert again is not None and (again.image_id, again.cost) == ("clip", 3)


def test_a_waiting_clip_fills_its_owners_cap_as_the_pictures_it_costs_and_running_it_counts_one(
        client: redis.Redis, queue: FairQueue, redis_key_prefix: str) -> None:
    admission = Admission(client, redis_key_prefix, policy(cap=10), queue)
    queue.push(Share("vic"), ANALYSIS, "clip", cost=9)
    assert queue.pending("vic")[0] == 9
    admission.admit_upload(user("vic"))  # 9 of 10
    queue.push(Share("vic"), ANALYSIS, "photo")
    with pytest.raises(TooLarge) as refused:
        admission.admit_upload(user("vic"))
    assert refused.value.metadata == {"scope": "principal", "limit": "10", "pending": "10"}
    assert "a waiting animation or clip counts as the pictures it costs" in refused.value.message
    running = queue.pop()
    assert running is not None and running.image_id == "clip" and queue.pending("vic")[0] == 2  # it and the photo
    admission.admit_upload(user("vic"))
    queue.done(running)
    assert queue.pending("vic")[0] == 1


# -- light items and the prompt lane ------------------------------------------------------------------------
def test_an_item_is_light_only_when_its_principal_has_nothing_else_queued_or_running(queue: FairQueue) -> None:
    queue.push(Share("solo"), ANALYSIS, "s0")
    queue.push(Share("busy"), ANALYSIS, "b0")
    queue.push(Share("busy"), ANALYSIS, "b1")
    taken = {item.image_id: item for item in (queue.pop(), queue.pop(), queue.pop()) if item is not None}
    assert (taken["s0"].light, taken["b0"].light, taken["b1"].light) == (True, False, False)  # b1: b0 runs


def test_pop_light_takes_an_accounts_only_picture_and_never_a_backlog_a_second_item_a_map_or_a_clip(
        queue: FairQueue) -> None:
    for n in range(3):
        queue.push(Share("flood"), ANALYSIS, f"f{n}")
    queue.push(Share("mapper"), REGION_MAP, "m0")
    queue.push(Share("clipper"), ANALYSIS, "clip", cost=5)
    assert queue.pop_light() is None  # a backlog, a report's map and a clip: none is light work for the lane
    queue.push(Share("quiet"), ANALYSIS, "q0")
    light = queue.pop_light()
    assert light is not None and (light.principal_id, light.image_id, light.light) == ("quiet", "q0", True)
    queue.push(Share("quiet"), ANALYSIS, "q1")
    assert queue.pop_light() is None  # q0 still runs
    queue.done(light)
    again = queue.pop_light()
    assert again is not None and again.image_id == "q1"
    queue.done(again)
    # The light items took their principal's turns: the rest goes on in fair order.
    assert sorted(drain(queue)) == ["clipper:clip", "flood:f0", "flood:f1", "flood:f2", "mapper:m0"]


def work_while_another_account_uploads(dispatcher: FairDispatcher, body: Callable[[], object], *, nice: int,
                                       flood_started: threading.Event, queue: FairQueue) -> None:
    """Run body on a thread of its own, as a worker's task thread with a prompt lane (its priority lowered by
    `nice`); once flood_started is set, the account "quiet" queues its only picture, "q0"."""
    failures: list[BaseException] = []

    def task_thread() -> None:
        try:
            assert dispatcher.start_prompt_lane(backlog_nice=nice, poll_seconds=0.01, limit_seconds=30)
            try:
                body()
            finally:
                dispatcher.stop_prompt_lane(10)
        except BaseException as exc:  # re-raised in the test
            failures.append(exc)

    def quiet_account() -> None:
        if flood_started.wait(10):
            queue.push(Share("quiet"), ANALYSIS, "q0")

    threads = [threading.Thread(target=quiet_account), threading.Thread(target=task_thread)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "the task thread did not finish"
    if failures:
        raise failures[0]


@pytest.mark.skipif(not can_lower_threads(), reason="threads have a nice value of their own on Linux only")
def test_while_a_worker_runs_a_backlog_its_prompt_lane_runs_another_accounts_only_picture_first_at_full_priority(
        queue: FairQueue) -> None:
    base = thread_nice(threading.get_native_id())
    ran: list[tuple[str, int]] = []  # (image, nice of the thread that analysed it), in the order they finished
    flood_started, quiet_done = threading.Event(), threading.Event()
    flushes: list[str] = []

    def analyse(image_id: str) -> str:
        if image_id == "f0":
            flood_started.set()
            assert quiet_done.wait(10), "the quiet account's picture was not started beside the backlog"
        ran.append((image_id, thread_nice(threading.get_native_id())))
        if image_id == "q0":
            quiet_done.set()
        return "succeeded"

    dispatcher = FairDispatcher(queue, analyse=analyse, map_regions=lambda i: "ready", when_idle=lambda: None,
                                observe_wait=lambda name, seconds: None, flush_audit=lambda: flushes.append("x"))
    for n in range(3):
        queue.push(Share("flood"), ANALYSIS, f"f{n}")

    def worker() -> None:
        assert dispatcher.run_next() == "succeeded"  # f0, during which the lane runs q0
        queue.push(Share("solo"), ANALYSIS, "s0")  # an account's only item, whose turn it is: to the lane
        while dispatcher.run_next() != "empty":
            pass

    work_while_another_account_uploads(dispatcher, worker, nice=5, flood_started=flood_started, queue=queue)
    lowered, nice = min(19, base + 5), dict(ran)
    assert ran[:2] == [("q0", base), ("f0", lowered)]  # q0 started beside f0 and finished first
    assert (nice["s0"], nice["f1"]) == (base, lowered) and sorted(nice) == ["f0", "f1", "f2", "q0", "s0"]
    assert flushes  # an item the lane found writes its audit events (a task writes its own)
    assert queue.pending("flood") == (0, 0) and queue.pending("quiet") == (0, 0)


@pytest.mark.skipif(not can_lower_threads(), reason="threads have a nice value of their own on Linux only")
def test_a_light_item_the_lane_cannot_run_now_is_put_back_with_a_token(queue: FairQueue) -> None:
    flood_started, tokens = threading.Event(), []

    def analyse(image_id: str) -> str:
        if image_id == "f0":
            flood_started.set()
            deadline = time.monotonic() + 10
            while not tokens and time.monotonic() < deadline:
                time.sleep(0.01)
            return "succeeded"
        raise Unavailable("database down")

    dispatcher = FairDispatcher(queue, analyse=analyse, map_regions=lambda i: "ready", when_idle=lambda: None,
                                observe_wait=lambda name, seconds: None, nudge=lambda: tokens.append("token"))
    queue.push(Share("flood"), ANALYSIS, "f0")
    queue.push(Share("flood"), ANALYSIS, "f1")

    work_while_another_account_uploads(dispatcher, lambda: dispatcher.run_next(), nice=1,
                                       flood_started=flood_started, queue=queue)
    assert tokens == ["token"]  # and the lane did not take q0 again at once: one token, not one per poll
    assert queue.pending("quiet") == (1, 2)  # q0 waits again (not running), beside f1


def test_an_item_handed_out_without_its_token_takes_a_waiting_token_back_so_the_broker_does_not_grow(
        base_settings: Settings, client: redis.Redis) -> None:
    settings = base_settings.with_overrides(redis_key_prefix=f"pay-{secrets.token_hex(4)}")
    app = make_celery(settings)
    lists = broker_lists(RedisKeys(settings.redis_key_prefix))
    fair = FairQueue(client, settings.redis_key_prefix, running_timeout_seconds=60,
                     token_list=lists[ANALYSIS_PRIORITY], token_task=RUN_NEXT)
    queue = TaskQueue(app, fair)

    def tokens() -> int:
        return int(client.llen(lists[ANALYSIS_PRIORITY]))

    try:
        for n in range(3):
            queue.analyze_image(f"f{n}", Share("flood"))
        queue.analyze_image("q0", Share("quiet"))
        assert tokens() == 4
        light = fair.pop_light()  # the prompt lane's item: no token of its own
        assert light is not None and light.image_id == "q0" and tokens() == 3
        assert fair.pop() is not None and tokens() == 3  # a task's item: its token was the task
        assert fair.pop(pay_token=True) is not None and tokens() == 2  # the task's second item
        client.lpush(lists[ANALYSIS_PRIORITY], b'{"headers": {"task": "pixelcheck.something_else"}}')
        assert fair.pop(pay_token=True) is not None and tokens() == 3  # only a token is taken back
    finally:
        client.delete(*lists.values())
        app.close()
