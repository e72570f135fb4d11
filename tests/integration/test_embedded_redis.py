"""The embedded Valkey server: starts, answers, keeps out of the terminal's way and always stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from pixelcheck.embedded_redis import EmbeddedRedis, EmbeddedRedisError


def is_running(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_until_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(pid):
            return True
        time.sleep(0.05)
    return False


def test_starts_on_a_free_port_and_serves_redis_commands(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(server.url)
        client.set("greeting", "hello")
        assert client.get("greeting") == b"hello"
        client.close()


def test_starts_on_the_port_it_is_given(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with EmbeddedRedis(tmp_path, port=port) as server:
        assert server.port == port
        assert server.ping()


def test_stop_ends_the_process_and_may_be_repeated(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path).start()
    pid = server.pid
    assert pid is not None and is_running(pid)
    server.stop()
    server.stop()
    assert not is_running(pid)
    assert not server.ping()
    assert server.pid is None


def test_a_busy_port_fails_with_the_servers_own_explanation(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "first") as first:
        second = EmbeddedRedis(tmp_path / "second", port=first.port)
        with pytest.raises(EmbeddedRedisError, match="Address already in use"):
            second.start()
        assert second.pid is None
        assert first.ping()


def test_url_of_a_server_not_started_raises(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedRedisError, match="not running"):
        _ = EmbeddedRedis(tmp_path).url


def test_runs_in_a_process_group_of_its_own(tmp_path: Path) -> None:
    # A Ctrl-C in the terminal goes to the foreground group; the server must outlive it until stopped.
    with EmbeddedRedis(tmp_path) as server:
        assert server.pid is not None
        assert os.getpgid(server.pid) == server.pid != os.getpgrp()


def test_keeps_its_log_in_the_data_dir(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as server:
        assert server.log_path == tmp_path / "valkey.log"
        assert "Ready to accept connections" in server.log_path.read_text()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent death signal is Linux only")
def test_server_dies_with_its_owner_when_asked_even_on_sigkill(tmp_path: Path) -> None:
    owner_code = (
        "import sys, time\n"
        "from pixelcheck.embedded_redis import EmbeddedRedis\n"
        f"server = EmbeddedRedis({str(tmp_path)!r}, die_with_parent=True).start()\n"
        "print(server.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", owner_code], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        server_pid = int(owner.stdout.readline())
        assert is_running(server_pid)
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
        assert wait_until_gone(server_pid), "the server outlived its owner"
    finally:
        owner.kill()
        owner.wait()
