"""The malloc arena cap: set on glibc, left alone when the operator chose MALLOC_ARENA_MAX or asked for 0."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from pixelcheck.malloc_arenas import cap_malloc_arenas

GLIBC = platform.libc_ver()[0] == "glibc"


def capped_in_a_fresh_process(count: int, env: dict[str, str]) -> str:
    code = f"from pixelcheck.malloc_arenas import cap_malloc_arenas; print(cap_malloc_arenas({count}))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="the cap is glibc's mallopt(M_ARENA_MAX)")
def test_the_cap_is_set_on_glibc() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert capped_in_a_fresh_process(2, env) == "True"


def test_an_operators_malloc_arena_max_wins_and_zero_keeps_glibcs_default() -> None:
    env = {**os.environ, "MALLOC_ARENA_MAX": "4"}
    assert capped_in_a_fresh_process(2, env) == "False"
    assert cap_malloc_arenas(0) is False
