"""PixelCheck server, worker and beat processes for tests that need real, separately killable processes.

Settings go to the child as PIXELCHECK_* variables, start() returns once the process is usable, kill() is
a crash, stop() a clean SIGTERM shutdown.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pixelcheck.settings import Settings


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports_in_a_row(count: int, host: str = "0.0.0.0", tries: int = 50) -> int:
    """The first of `count` consecutive TCP ports that are all free right now (a supervisor's children serve
    metrics on base + index): each is bound once to make sure."""
    for _ in range(tries):
        base = free_port(host)
        held: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(sock)
                sock.bind((host, port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError(f"no {count} free ports in a row after {tries} tries")


class _ChildProcess:
    """`python -m pixelcheck <argv>` in a session of its own, its output appended to log_path."""

    def __init__(self, settings: Settings, log_path: Path, argv: list[str]) -> None:
        self.settings = settings
        self.log_path = log_path
        self._argv = argv
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def _spawn(self) -> None:
        env = {**os.environ, **self.settings.to_env()}
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        self.process = subprocess.Popen([sys.executable, "-m", "pixelcheck", *self._argv], env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def _check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"`pixelcheck {' '.join(self._argv)}` exited with {self.process.returncode}; "
                               f"see {self.log_path}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        """Send signum to the process (not its group)."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """The exit code, once the process ended within timeout. Raises subprocess.TimeoutExpired."""
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the process group, as a crash would."""
        if self.running:
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self._close_log()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL when it has not ended within timeout."""
        if self.running:
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class ServerProcess(_ChildProcess):
    """`python -m pixelcheck serve` on 127.0.0.1 and a free port; start() waits for health SERVING."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        super().__init__(settings.with_overrides(grpc_address=self.address), log_path, ["serve"])

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self._spawn()
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                self._check_alive()
                try:
                    reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return self
                except grpc.RpcError:
                    pass
                time.sleep(0.2)
        raise TimeoutError(f"server not SERVING after {timeout}s; see {self.log_path}")


class WorkerProcess(_ChildProcess):
    """`python -m pixelcheck worker` (solo pool by default), or with webhooks=True `pixelcheck worker --webhooks`
    (its thread pool); start() waits until it consumes its queue."""

    def __init__(self, settings: Settings, log_path: Path, *, pool: str = "", name: str = "w1",
                 webhooks: bool = False) -> None:
        pool = pool or ("threads" if webhooks else "solo")
        super().__init__(settings, log_path, ["worker", *(["--webhooks"] if webhooks else []), "--pool", pool,
                                              "--hostname", f"{name}-{os.getpid()}@%h"])
        self.webhooks = webhooks

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        import redis

        from pixelcheck.keys import RedisKeys

        self._spawn()
        keys = RedisKeys(self.settings.redis_key_prefix)
        binding = f"{keys.celery_keyprefix}_kombu.binding.{keys.webhook_queue if self.webhooks else keys.celery_queue}"
        client = redis.Redis.from_url(self.settings.redis_url)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                self._check_alive()
                # Ready once it logged so and its queue binding exists (it consumes our queue).
                if b"ready." in self.log_path.read_bytes() and client.exists(binding):
                    return self
                time.sleep(0.2)
        finally:
            client.close()
        raise TimeoutError(f"worker not ready after {timeout}s; see {self.log_path}")


class BeatProcess(_ChildProcess):
    """`python -m pixelcheck beat`: runs the reconciler every max(5 s, analysis_stale_seconds / 4)."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)  # beat keeps its schedule file there
        super().__init__(settings, log_path, ["beat"])

    def start(self, timeout: float = 60.0) -> BeatProcess:
        self._spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if b"beat: Starting" in self.log_path.read_bytes():
                return self
            time.sleep(0.2)
        raise TimeoutError(f"beat not started after {timeout}s; see {self.log_path}")


class S3Server:
    """A real S3-compatible HTTP server (moto in server mode, `python -m moto.server`) on a free port.

    Its state lives in its memory: each test run gets an empty server. stop() ends it."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> S3Server:
        import urllib.error
        import urllib.request

        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={k: v for k, v in os.environ.items() if not k.startswith("PIXELCHECK_")})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the S3 server exited with {self.process.returncode}; see {self.log_path}")
            try:
                urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1).close()
                return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise TimeoutError(f"the S3 server did not answer within {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
