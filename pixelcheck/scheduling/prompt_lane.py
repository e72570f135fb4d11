"""Two CPU priorities in one worker process: a backlog runs on the task's own thread at a lower priority, and
work somebody waits for alone runs beside it on the prompt lane, a thread at the process's normal priority.

Why: a started analysis is never preempted. While one account's flood keeps every worker busy, another
account's single picture would wait for a running analysis to finish and then share the cores with the
flood's. With a prompt lane, a worker whose task thread runs an item looks every `poll_seconds` for a light
item (an account's only one: fair_queue.FairQueue.pop_light) and starts it at once on the lane, where the
kernel gives it the cores first (at nice +10 the backlog's thread gets about a tenth of a core that both
want). The backlog loses no throughput: it has the cores back as soon as the light item is done. A light
item the task thread itself takes is started on the lane too (the task thread goes on with the next item),
and a region map somebody asked for runs there while the task thread waits for it.

Linux keeps a nice value per thread and lets a thread raise its own nice value (lower its priority) but not
bring it back down without privilege, so each priority keeps a thread of its own: the lane starts before the
task thread lowers itself.

Time limits: Celery's soft limit is a signal that raises SoftTimeLimitExceeded in the task thread. A task
thread waiting for the work it handed to the lane (run) passes it on to the lane's thread, where the work
hears of it as it would have on its own thread; work the lane found, or was given without a wait (start),
gets a limit of its own. The hard limit still ends the whole process. Handed work runs in the handing thread's
context, so its trace spans are children of the task's.
"""

from __future__ import annotations

import contextvars
import ctypes
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from billiard.exceptions import SoftTimeLimitExceeded

log = logging.getLogger("pixelcheck.scheduling.prompt_lane")

Work = Callable[[], object]
NOT_TAKEN = object()  # run()'s answer when the lane is busy: run the work on the calling thread
_IDLE, _LOOKING, _RUNNING = "idle", "looking", "running"


def can_lower_threads() -> bool:
    """Whether this platform keeps a nice value per thread (Linux), which lanes need."""
    return sys.platform.startswith("linux") and hasattr(os, "setpriority")


def lower_this_thread(steps: int) -> int:
    """Raise the calling thread's nice value by `steps` (at most to 19); returns the new value. Linux only."""
    tid = threading.get_native_id()
    nice = min(19, os.getpriority(os.PRIO_PROCESS, tid) + steps)
    os.setpriority(os.PRIO_PROCESS, tid, nice)
    return nice


def thread_nice(native_id: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, native_id)


class _Job:
    def __init__(self, work: Work, limit_seconds: float | None, *, waited: bool = False) -> None:
        self.work = work
        self.limit_seconds = limit_seconds
        self.waited = waited  # a task thread waits for it and re-raises its error
        self.context = contextvars.copy_context()  # the handing thread's: its trace span is the work's parent
        self.result: object = None
        self.error: BaseException | None = None
        self.running = False  # inside work(): a time limit may interrupt it
        self.interrupted = False  # at most once per job
        self.done = threading.Event()


class PromptLane:
    """A thread beside a worker's task thread that runs handed work at once, and while the task thread is
    busy (`watching`) looks for work with `find` every `poll_seconds`."""

    def __init__(self, find: Callable[[], Work | None], *, poll_seconds: float, limit_seconds: float) -> None:
        self._find = find
        self._poll = poll_seconds
        self._limit = limit_seconds
        self._cond = threading.Condition()
        self._handed: _Job | None = None
        self._state = _IDLE
        self._watching = 0
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="pixelcheck-prompt-lane", daemon=True)
        self._thread.start()

    @property
    def native_id(self) -> int | None:
        return self._thread.native_id

    def start(self, work: Work) -> bool:
        """Start `work` on the lane and return at once, with the lane's own time limit; False when it is busy."""
        return self._hand(_Job(work, self._limit))

    def run(self, work: Work) -> object:
        """Run `work` on the lane and return what it returns (or raise what it raised); NOT_TAKEN when the lane
        is busy or closed. A soft time limit that interrupts the wait is passed on to the work."""
        job = _Job(work, None, waited=True)
        if not self._hand(job):
            return NOT_TAKEN
        try:
            job.done.wait()
        except SoftTimeLimitExceeded:
            self._interrupt(job)
            job.done.wait()  # the work stops and records why; the hard limit ends the process if it does not
        if job.error is not None:
            raise job.error
        return job.result

    def _hand(self, job: _Job) -> bool:
        with self._cond:
            while self._state == _LOOKING and not self._closed:  # a look takes a Redis round trip
                self._cond.wait()
            if self._state != _IDLE or self._closed:
                return False
            self._state, self._handed = _RUNNING, job
            self._cond.notify_all()
        return True

    @contextmanager
    def watching(self) -> Iterator[None]:
        """While the block runs (the task thread is busy), the lane looks for work."""
        with self._cond:
            self._watching += 1
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._watching -= 1

    def close(self, timeout: float) -> None:
        """Stop looking for work; wait up to `timeout` for the running job to finish."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            job = None
            try:
                job = self._next_job()
                if job is None:
                    return
                self._run(job)
            except SoftTimeLimitExceeded:  # a limit that arrived just as its job ended
                pass
            except Exception:  # never let the lane die: the task thread then runs everything itself
                log.exception("prompt lane: unexpected error")
            finally:
                if job is not None:
                    self._finish(job)

    def _next_job(self) -> _Job | None:
        while True:
            with self._cond:
                if self._handed is not None:
                    job, self._handed = self._handed, None
                    return job
                if self._closed:
                    return None
                if not self._watching:
                    self._cond.wait()
                    continue
                self._state = _LOOKING  # a task thread that hands work over waits for the look
            work = self._look()
            with self._cond:
                self._state = _IDLE if work is None else _RUNNING
                self._cond.notify_all()
                if work is not None:
                    return _Job(work, self._limit)
                if self._handed is None and not self._closed and self._watching:
                    self._cond.wait(self._poll)

    def _look(self) -> Work | None:
        try:
            return self._find()
        except Exception:
            log.warning("prompt lane: could not look for work", exc_info=True)
            return None

    def _run(self, job: _Job) -> None:
        timer = None
        if job.limit_seconds is not None:
            timer = threading.Timer(job.limit_seconds, self._interrupt, args=(job,))
            timer.daemon = True
            timer.start()
        try:
            with self._cond:
                job.running = True
            job.result = job.context.run(job.work)
        except BaseException as exc:
            job.error = exc
            if not job.waited:
                log.error("prompt lane: the work failed", exc_info=exc)
        finally:
            with self._cond:
                job.running = False
            if timer is not None:
                timer.cancel()

    def _finish(self, job: _Job) -> None:
        with self._cond:
            job.running = False
            self._state = _IDLE
            self._cond.notify_all()
        job.done.set()

    def _interrupt(self, job: _Job) -> None:
        """Raise SoftTimeLimitExceeded in the lane's thread, once, if `job` still runs there."""
        with self._cond:
            if not job.running or job.interrupted or self._thread.ident is None:
                return
            job.interrupted = True
            log.warning("prompt lane: time limit reached; stopping the running work")
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread.ident),
                                                       ctypes.py_object(SoftTimeLimitExceeded))
