"""The prompt lane: a thread at the process's normal CPU priority beside a task thread that lowered its own;
it runs handed work at once, looks for work only while the task thread is busy, and time limits reach it."""

from __future__ import annotations

import contextvars
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from billiard.exceptions import SoftTimeLimitExceeded

from pixelcheck.scheduling.prompt_lane import NOT_TAKEN, PromptLane, can_lower_threads, lower_this_thread, thread_nice

pytestmark = pytest.mark.skipif(not can_lower_threads(), reason="threads have a nice value of their own on Linux only")

WAIT = 10.0  # seconds a test waits for something that should happen at once


def nothing() -> None:
    return None


@pytest.fixture
def lanes() -> Iterator[Callable[..., PromptLane]]:
    made: list[PromptLane] = []

    def make(find: Callable[[], Callable[[], object] | None] = nothing, *, limit: float = 60.0) -> PromptLane:
        lane = PromptLane(find, poll_seconds=0.01, limit_seconds=limit)
        made.append(lane)
        return lane

    yield make
    for lane in made:
        lane.close(WAIT)


def in_thread(body: Callable[[], object]) -> object:
    """Run body on a thread of its own (a task thread that may lower its priority) and return its result."""
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(body()))
    thread.start()
    thread.join(WAIT)
    assert out, "the thread did not finish"
    return out[0]


def test_the_lane_keeps_the_normal_priority_when_the_task_thread_lowers_its_own(lanes) -> None:
    base = thread_nice(threading.get_native_id())

    def task_thread() -> tuple[int, int]:
        lane = lanes()
        lowered = lower_this_thread(10)
        assert lane.native_id is not None
        return lowered, thread_nice(lane.native_id)

    lowered, lane_nice = in_thread(task_thread)  # type: ignore[misc]
    assert (lowered, lane_nice) == (min(19, base + 10), base)
    assert thread_nice(threading.get_native_id()) == base  # only the task thread was lowered


def test_work_handed_to_the_lane_runs_on_the_lane_and_gives_back_its_result_or_its_error(lanes) -> None:
    lane = lanes()
    assert lane.run(lambda: threading.current_thread().name) == "pixelcheck-prompt-lane"

    def broken() -> None:
        raise ValueError("bad bytes")

    with pytest.raises(ValueError, match="bad bytes"):
        lane.run(broken)
    assert lane.run(lambda: 42) == 42  # an error leaves the lane ready for more


def test_the_lane_looks_for_work_only_while_the_task_thread_is_busy(lanes) -> None:
    looks, ran = [], threading.Event()
    offered = [ran.set]

    def find() -> Callable[[], object] | None:
        looks.append(time.monotonic())
        return offered.pop() if offered else None

    lane = lanes(find)
    time.sleep(0.1)
    assert looks == []  # idle task thread: the broker hands out the work
    with lane.watching():
        assert ran.wait(WAIT)
        time.sleep(0.05)
    seen = len(looks)
    assert seen >= 2  # it found the work, and went on looking while the task thread was busy
    time.sleep(0.1)
    assert len(looks) <= seen + 1  # at most a look already under way when the block ended


REQUEST = contextvars.ContextVar("request", default="none")


def test_handed_work_runs_in_the_handing_threads_context_so_its_spans_are_the_tasks_children(lanes) -> None:
    lane = lanes()
    token = REQUEST.set("task 7")
    try:
        assert lane.run(REQUEST.get) == "task 7"
    finally:
        REQUEST.reset(token)


def test_a_busy_lane_takes_no_more_work_so_the_task_thread_runs_it_itself(lanes) -> None:
    started, release = threading.Event(), threading.Event()

    def long_work() -> None:
        started.set()
        release.wait(WAIT)

    offered: list[Callable[[], object]] = [long_work]
    lane = lanes(lambda: offered.pop() if offered else None)
    with lane.watching():
        assert started.wait(WAIT)
        assert lane.run(lambda: "handed") is NOT_TAKEN
        release.set()
    deadline = time.monotonic() + WAIT
    while (outcome := lane.run(lambda: "handed")) is NOT_TAKEN and time.monotonic() < deadline:
        time.sleep(0.01)
    assert outcome == "handed"


def stops_at_the_limit(stopped: threading.Event) -> Callable[[], str]:
    """Work that runs until a soft time limit reaches it, and then records why it stopped (as an analysis does)."""

    def work() -> str:
        try:
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline:
                time.sleep(0.005)
            return "ran to the end"
        except SoftTimeLimitExceeded:
            stopped.set()
            return "stopped by the time limit"

    return work


def test_a_soft_time_limit_that_interrupts_the_waiting_task_thread_reaches_the_work_on_the_lane(lanes) -> None:
    def raise_soft_limit(*_: object) -> None:  # what Celery's soft-limit signal handler does
        raise SoftTimeLimitExceeded()

    previous = signal.signal(signal.SIGUSR1, raise_soft_limit)
    timer = threading.Timer(0.2, os.kill, args=(os.getpid(), signal.SIGUSR1))
    try:
        stopped = threading.Event()
        timer.start()
        assert lanes().run(stops_at_the_limit(stopped)) == "stopped by the time limit"
        assert stopped.is_set()
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)


def test_work_the_lane_found_itself_stops_at_the_lanes_own_time_limit(lanes) -> None:
    stopped = threading.Event()
    offered = [stops_at_the_limit(stopped)]
    lane = lanes(lambda: offered.pop() if offered else None, limit=0.2)
    with lane.watching():
        assert stopped.wait(WAIT)
    assert lane.run(lambda: "next") == "next"  # and the lane goes on


def test_closing_the_lane_waits_for_its_running_work(lanes) -> None:
    started, finished = threading.Event(), threading.Event()

    def work() -> None:
        started.set()
        time.sleep(0.2)
        finished.set()

    offered: list[Callable[[], object]] = [work]
    lane = lanes(lambda: offered.pop() if offered else None)
    with lane.watching():
        assert started.wait(WAIT)
    lane.close(WAIT)
    assert finished.is_set()
    assert lane.run(lambda: "late") is NOT_TAKEN


def test_work_started_on_the_lane_runs_while_the_caller_goes_on_and_stops_at_the_lanes_time_limit(lanes) -> None:
    stopped = threading.Event()
    lane = lanes(limit=0.2)
    assert lane.start(stops_at_the_limit(stopped)) is True  # returns at once
    assert lane.start(nothing) is False  # busy
    assert stopped.wait(WAIT)
