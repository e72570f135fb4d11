"""A real Celery worker in a child process, configured like the test server (same database and Redis)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from pixelcheck.keys import RedisKeys
from pixelcheck.settings import Settings


class WorkerProcess:
    """`python -m pixelcheck worker` with the given settings; start() waits until it consumes the queue."""

    def __init__(self, settings: Settings, log_path: Path, *, pool: str = "solo", name: str = "w1") -> None:
        self.settings = settings
        self.log_path = log_path
        self.pool = pool
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        env = {**os.environ, **self.settings.to_env()}
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pixelcheck", "worker", "--pool", self.pool, "--hostname",
             f"{self.name}-{os.getpid()}@%h"], env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        # Ready once the worker registered as a consumer of our queue (kombu keeps a binding set per queue).
        client = redis.Redis.from_url(self.settings.redis_url)
        keys = RedisKeys(self.settings.redis_key_prefix)
        deadline = time.monotonic() + timeout
        marker = b"ready."
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}; see {self.log_path}")
            if marker in self.log_path.read_bytes() and client.exists(
                    f"{keys.celery_keyprefix}_kombu.binding.{keys.celery_queue}"):
                client.close()
                return
            time.sleep(0.2)
        client.close()
        raise TimeoutError(f"worker not ready after {timeout}s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL the whole worker (parent and pool children), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "_log", None):
            self._log.close()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """`python -m pixelcheck serve` in a child process; start() waits until health answers SERVING."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.port = free_port()
        self.settings = settings.with_overrides(grpc_address=f"127.0.0.1:{self.port}")
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        env = {**os.environ, **self.settings.to_env()}
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([sys.executable, "-m", "pixelcheck", "serve"], env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited with {self.process.returncode}; see {self.log_path}")
                try:
                    if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                        return self
                except grpc.RpcError:
                    pass
                time.sleep(0.2)
        raise TimeoutError(f"server not serving after {timeout}s; see {self.log_path}")

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def stop(self) -> int | None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        if getattr(self, "_log", None):
            self._log.close()
        return self.process.returncode if self.process else None
