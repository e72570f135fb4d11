"""Runs blocking work (database, image decoding) off the event loop, keeping the call's contextvars."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Offloader:
    """A bounded thread pool for blocking calls made from async code."""

    def __init__(self, max_workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pixelcheck-blocking")

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await fn(*args, **kwargs) run in the pool, with the caller's contextvars."""
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(self._pool, functools.partial(ctx.run, fn, *args, **kwargs))

    async def run_abandonable(self, fn: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        """Like run, passing fn an `abandoned` callable that turns True once the awaiting call is cancelled
        (client cancel, deadline, server shutdown), so fn can give up before keeping anything."""
        abandoned = threading.Event()
        try:
            return await self.run(fn, *args, abandoned=abandoned.is_set, **kwargs)
        except asyncio.CancelledError:
            abandoned.set()
            raise

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
