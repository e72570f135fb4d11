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
