"""The parent of `serve --processes N` with stand-in children: it gives up on children that keep dying,
refuses a taken port, stops cleanly on SIGTERM. (tests/e2e/test_server_processes.py runs real servers.)"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time

import pytest

from pixelcheck.api.supervisor import MAX_DEATHS, Supervisor, process_count, reserve_port
from pixelcheck.settings import Settings

# Stand-in children get the supervisor's "--processes 1 --supervised" as ignored script arguments.
DIES_AT_ONCE = (sys.executable, "-c", "import sys; sys.exit(3)")
STOPS_ON_SIGTERM = (sys.executable, "-c", "import signal, sys, time\n"
                    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\ntime.sleep(60)")


@pytest.fixture
def settings() -> Settings:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return Settings.from_env(environ={}, env_file="/nonexistent").with_overrides(
        grpc_address=f"127.0.0.1:{port}", grace_seconds=2.0)


def test_children_that_keep_dying_make_the_parent_give_up_with_a_non_zero_exit(settings: Settings) -> None:
    supervisor = Supervisor(settings, 2, command=DIES_AT_ONCE, restart_delays=(0.05,))
    started = time.monotonic()
    assert supervisor.run() == 1
    assert time.monotonic() - started < 30
    assert len(supervisor._deaths) == MAX_DEATHS + 1


def test_sigterm_stops_every_child_and_the_parent_exits_zero(settings: Settings) -> None:
    supervisor = Supervisor(settings, 2, command=STOPS_ON_SIGTERM)
    before = signal.getsignal(signal.SIGTERM)
    threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
    assert supervisor.run() == 0
    assert signal.getsignal(signal.SIGTERM) == before  # the parent's own handlers are put back


def test_a_port_already_taken_is_refused_before_any_child_starts(settings: Settings) -> None:
    host, port = settings.grpc_address.rsplit(":", 1)
    with socket.socket() as taken:
        taken.bind((host, int(port)))
        taken.listen()
        assert Supervisor(settings, 2, command=DIES_AT_ONCE).run() == 1


def test_port_zero_becomes_one_real_port_shared_by_reuseport() -> None:
    reserved, address = reserve_port("127.0.0.1:0")
    assert reserved is not None
    try:
        port = int(address.rsplit(":", 1)[1])
        assert port > 0
        with socket.socket() as child:  # what each gRPC child does with grpc.so_reuseport=1
            child.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            child.bind(("127.0.0.1", port))
        with socket.socket() as stranger, pytest.raises(OSError):
            stranger.bind(("127.0.0.1", port))
    finally:
        reserved.close()


def test_zero_processes_means_one_per_core() -> None:
    settings = Settings.from_env(environ={}, env_file="/nonexistent")
    assert process_count(settings) == (os.cpu_count() or 1)
    assert process_count(settings.with_overrides(server_processes=3)) == 3
    assert process_count(settings, 1) == 1
