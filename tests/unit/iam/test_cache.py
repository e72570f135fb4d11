"""TtlCache: entries end after their time limit, the least recently used go first past the bound."""

from __future__ import annotations

from pixelcheck.iam.cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_is_served_until_its_time_limit_and_not_after() -> None:
    clock = Clock()
    cache: TtlCache[str] = TtlCache(2.0, clock=clock)
    cache.put("u1", "ada")
    clock.now += 1.99
    assert cache.get("u1") == "ada"
    clock.now += 0.01
    assert cache.get("u1") is None
    assert len(cache) == 0


def test_a_shorter_limit_per_entry_is_kept_and_a_longer_one_is_capped() -> None:
    clock = Clock()
    cache: TtlCache[str] = TtlCache(10.0, clock=clock)
    cache.put("short", "a", ttl_seconds=1.0)
    cache.put("long", "b", ttl_seconds=60.0)
    clock.now += 1.0
    assert cache.get("short") is None and cache.get("long") == "b"
    clock.now += 9.0
    assert cache.get("long") is None


def test_past_the_bound_the_least_recently_used_entry_is_dropped() -> None:
    cache: TtlCache[int] = TtlCache(60.0, max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_forget_and_a_zero_limit_keep_nothing() -> None:
    cache: TtlCache[int] = TtlCache(60.0)
    cache.put("a", 1)
    cache.forget("a")
    assert cache.get("a") is None
    off: TtlCache[int] = TtlCache(0.0)
    off.put("a", 1)
    off.put("b", 2, ttl_seconds=5.0)
    assert off.get("a") is None and off.get("b") is None and len(off) == 0
