"""`pixelcheck serve --processes N`: N full server processes on one port, under one supervising parent.

Python runs one core per process, so a host's cores are used by several server processes that listen on
the same address with SO_REUSEPORT (the kernel spreads new connections over them). Each child is a whole
`pixelcheck serve` (interceptors, audit writer, progress subscription, health), started with
`--supervised`. The parent imports no gRPC, database or Redis code; it
- holds the port: it binds (without listening) a SO_REUSEPORT socket on the address first, so a port
  already taken is reported once and clearly, port 0 becomes one real port for every child, and no
  process without SO_REUSEPORT can take the port while a child restarts;
- forwards SIGTERM and SIGINT to every child, waits up to the grace period plus STOP_MARGIN_SECONDS for
  them to drain (then SIGKILLs what is left) and exits 0 when every child stopped cleanly;
- restarts a child that dies, after a growing delay, and gives up (stops the others, exits 1) when
  children died more than MAX_DEATHS times within DEATH_WINDOW_SECONDS.
A child whose parent disappears (SIGKILL) stops by itself (see `watch_parent`).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

from pixelcheck.settings import Settings

log = logging.getLogger("pixelcheck.supervisor")

MAX_DEATHS = 5  # unexpected child exits tolerated within DEATH_WINDOW_SECONDS
DEATH_WINDOW_SECONDS = 60.0
RESTART_DELAYS_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0)  # after the 1st, 2nd ... death in the window
STOP_MARGIN_SECONDS = 15.0  # beyond the grace period: flushing the audit trail, closing connections
POLL_SECONDS = 0.1


def process_count(settings: Settings, requested: int | None = None) -> int:
    """Server processes to run: requested, else PIXELCHECK_SERVER_PROCESSES; 0 means one per core."""
    wanted = settings.server_processes if requested is None else requested
    return wanted if wanted > 0 else (os.cpu_count() or 1)


def reserve_port(address: str) -> tuple[socket.socket | None, str]:
    """A bound, non-listening SO_REUSEPORT socket on address's host and port, and the address with the
    port that was bound (port 0 is replaced by a free one). Addresses that are not host:port (unix:...)
    are returned unchanged with no socket. Raises OSError when the port is taken."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or address.startswith("unix"):
        return None, address
    bare_host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in bare_host else socket.AF_INET
    info = socket.getaddrinfo(bare_host, int(port_text), family, socket.SOCK_STREAM)[0]
    sock = socket.socket(info[0], socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(info[4])
    except OSError:
        sock.close()
        raise
    port = sock.getsockname()[1]
    return sock, f"{host}:{port}"


@dataclass
class _Child:
    index: int
    process: subprocess.Popen[bytes] | None = None
    restart_at: float = 0.0  # monotonic time of the next start while process is None


@dataclass
class Supervisor:
    """Runs `processes` server children from one Settings until a stop signal or too many deaths."""

    settings: Settings
    processes: int
    command: Sequence[str] = field(default_factory=lambda: (sys.executable, "-m", "pixelcheck", "serve"))
    restart_delays: Sequence[float] = RESTART_DELAYS_SECONDS
    clock: Callable[[], float] = time.monotonic
    _children: list[_Child] = field(default_factory=list)
    _deaths: deque[float] = field(default_factory=deque)
    _stop_signal: int = 0

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT (returns 0 when every child stopped cleanly, else 1) or until
        children keep dying (returns 1). Call it from the main thread: it installs signal handlers."""
        try:
            reserved, address = reserve_port(self.settings.grpc_address)
        except OSError as exc:
            log.error("cannot listen on %s: %s", self.settings.grpc_address, exc)
            return 1
        self._address = address
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._children = [_Child(index) for index in range(self.processes)]
            for child in self._children:
                self._start(child)
            log.info("PixelCheck gRPC: %d server processes on %s (parent pid %d)", self.processes, address,
                     os.getpid())
            gave_up = self._supervise()
            clean = self._stop_all()
            return 1 if gave_up or not clean else 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if reserved is not None:
                reserved.close()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stop_signal = signum

    def _child_settings(self, child: _Child) -> Settings:
        # Each child serves its own Prometheus endpoint: metrics port + child index, like worker pools.
        metrics_port = self.settings.metrics_port + child.index if self.settings.metrics_port > 0 else 0
        return self.settings.with_overrides(grpc_address=self._address, metrics_port=metrics_port,
                                            server_processes=1)

    def _start(self, child: _Child) -> None:
        env = {**os.environ, **self._child_settings(child).to_env()}
        child.process = subprocess.Popen([*self.command, "--processes", "1", "--supervised"], env=env)
        log.info("server process %d started (pid %d)", child.index, child.process.pid)

    def _supervise(self) -> bool:
        """Watch children until a stop signal (False) or too many deaths (True)."""
        while not self._stop_signal:
            now = self.clock()
            for child in self._children:
                if child.process is None:
                    if now >= child.restart_at:
                        self._start(child)
                    continue
                code = child.process.poll()
                if code is None:
                    continue
                child.process = None
                self._deaths.append(now)
                while self._deaths and self._deaths[0] < now - DEATH_WINDOW_SECONDS:
                    self._deaths.popleft()
                if len(self._deaths) > MAX_DEATHS:
                    log.error("server process %d exited with %s; %d exits within %.0f s: giving up",
                              child.index, code, len(self._deaths), DEATH_WINDOW_SECONDS)
                    return True
                delay = self.restart_delays[min(len(self._deaths), len(self.restart_delays)) - 1]
                log.error("server process %d exited with %s; restarting it in %.1f s", child.index, code, delay)
                child.restart_at = now + delay
            time.sleep(POLL_SECONDS)
        log.info("signal %d: stopping %d server processes (%.1f s grace)", self._stop_signal,
                 len(self._children), self.settings.grace_seconds)
        return False

    def _stop_all(self) -> bool:
        """SIGTERM every running child, wait for them, SIGKILL the late; True when all exited 0."""
        running = [c.process for c in self._children if c.process is not None]
        for process in running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = self.clock() + self.settings.grace_seconds + STOP_MARGIN_SECONDS
        clean = True
        for process in running:
            try:
                code = process.wait(max(0.0, deadline - self.clock()))
            except subprocess.TimeoutExpired:
                log.error("server process pid %d did not stop in time: killing it", process.pid)
                process.kill()
                code = process.wait()
            clean = clean and code == 0
        return clean


def watch_parent(on_orphaned: Callable[[], None], parent_pid: int | None = None) -> Callable[[], bool]:
    """A check for a supervised child: calls on_orphaned (once) when the parent process is gone."""
    parent = os.getppid() if parent_pid is None else parent_pid
    told = False

    def check() -> bool:
        nonlocal told
        if not told and os.getppid() != parent:
            told = True
            log.error("the supervising parent (pid %d) is gone: stopping", parent)
            on_orphaned()
        return told

    return check
