"""A bounded, per-process memory with a time limit on every entry, for the hot path of every call.

Identity keeps two: verified access tokens (until they expire, see TokenService.verify_access) and
accounts read by id (a few seconds, see Identity.get_account). Nothing here is shared between processes.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")
DEFAULT_MAX_ENTRIES = 10_000


class TtlCache(Generic[V]):
    """Key -> value for ttl_seconds after it was put, least recently used dropped past max_entries.

    Thread-safe; ttl_seconds <= 0 turns it off (get always misses, put keeps nothing).
    """

    def __init__(self, ttl_seconds: float, *, max_entries: int = DEFAULT_MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        """The value put under key less than ttl_seconds ago, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: str, value: V, *, ttl_seconds: float | None = None) -> None:
        """Keep value under key for ttl_seconds (default: the cache's), never longer than the cache's."""
        ttl = self._ttl if ttl_seconds is None else min(ttl_seconds, self._ttl)
        if ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
