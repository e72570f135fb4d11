"""A PixelCheck stack for benchmarks: its own database and Redis namespace, the server (and, on request, one
worker) as child processes, a signed-in user; plus the bare grpc.aio baseline server and result tables.

The database is a temporary SQLite file, or a new database on the MySQL/MariaDB server of --database-url
(dropped afterwards); Redis is an embedded Valkey, or --redis-url under a key prefix of the run's own.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image
from pixelcheck.v1 import auth_pb2, auth_pb2_grpc
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from pixelcheck.db import upgrade
from pixelcheck.embedded_redis import EmbeddedRedis
from pixelcheck.settings import Settings

HERE = Path(__file__).resolve().parent
PASSWORD = "violet-harbour-7421"
MIB = 1024 * 1024


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default="", help="MySQL/MariaDB server URL (default: temporary SQLite)")
    parser.add_argument("--redis-url", default="", help="Redis URL (default: an embedded Valkey)")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int, key: str = "VmRSS") -> int:
    """Resident memory of a process in KiB (key VmHWM: its peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, user + system CPU ticks) of a process, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[11]) + int(fields[12])


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a process and every process below it (children of children too)."""
    stats = {int(name): stat for name in os.listdir("/proc") if name.isdigit()
             if (stat := _proc_stat(int(name))) is not None}
    below: dict[int, list[int]] = {}
    for child, (parent, _) in stats.items():
        below.setdefault(parent, []).append(child)
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += stats[current][1] if current in stats else 0
        todo += below.get(current, [])
    return total / os.sysconf("SC_CLK_TCK")


def pids_named(name: str) -> list[int]:
    """Processes whose command name is name (a database server on this machine, say)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    found.append(int(entry))
    return found


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] if ordered else float("nan")


def distribution(values: Sequence[float]) -> str:
    """p50 / p95 / p99 of values in milliseconds."""
    return " / ".join(f"{percentile(values, q):.1f}" for q in (50, 95, 99))


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n### {title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    sys.stdout.flush()


def synthetic_jpeg(width: int, height: int, seed: int, quality: int = 90) -> bytes:
    """A camera-like JPEG (smooth structure plus grain), different for each seed."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray((rng.random((max(1, height // 32), max(1, width // 32), 3)) * 255).astype(np.uint8))
    smooth = np.asarray(coarse.resize((width, height), Image.BICUBIC), dtype=np.float32)
    grain = rng.normal(0, 4, smooth.shape).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


class ChildProcess:
    """A Python child process whose output goes to a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([sys.executable, *argv], env={**os.environ, **env}, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def wait_serving(address: str, process: ChildProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        while time.monotonic() < deadline:
            if process.process.poll() is not None:
                raise RuntimeError(f"server exited; see {process.log_path}")
            with contextlib.suppress(grpc.RpcError):
                status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            time.sleep(0.2)
    raise TimeoutError(f"server at {address} not SERVING; see {process.log_path}")


@dataclass
class Stack:
    settings: Settings
    workdir: Path
    address: str = ""
    server: ChildProcess | None = None
    workers: list[ChildProcess] = field(default_factory=list)
    token: str = ""
    server_env: dict[str, str] = field(default_factory=dict)  # extra environment of the server processes only

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)

    def start_server(self) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        env = {**self.settings.with_overrides(grpc_address=self.address).to_env(), **self.server_env}
        # One server process unless the settings ask for more: the baselines are single processes too.
        processes = str(self.settings.server_processes or 1)
        self.server = ChildProcess(["-m", "pixelcheck", "serve", "--processes", processes], env,
                                   self.workdir / "server.log")
        wait_serving(self.address, self.server)
        with grpc.insecure_channel(self.address) as channel:
            auth = auth_pb2_grpc.AuthServiceStub(channel)
            username = f"bench_{secrets.token_hex(4)}"
            auth.SignUp(auth_pb2.SignUpRequest(username=username, email=f"{username}@example.org",
                                               password=PASSWORD, display_name="Bench"))
            self.token = auth.SignIn(auth_pb2.SignInRequest(login=username, password=PASSWORD)).access_token

    def start_worker(self, *, webhooks: bool = False) -> ChildProcess:
        """One worker process (solo pool: one analysis at a time), or a webhooks worker (its thread pool), once it
        consumes its queue."""
        import redis

        from pixelcheck.keys import RedisKeys

        name = f"bench{len(self.workers)}-{secrets.token_hex(3)}"
        log = self.workdir / f"worker-{name}.log"  # unique: a replacement worker gets a log of its own
        kind = ["--webhooks"] if webhooks else ["--pool", "solo"]
        worker = ChildProcess(["-m", "pixelcheck", "worker", *kind, "--hostname", f"{name}@%h"],
                              self.settings.to_env(), log)
        self.workers.append(worker)
        keys = RedisKeys(self.settings.redis_key_prefix)
        queue = keys.webhook_queue if webhooks else keys.celery_queue
        client = redis.Redis.from_url(self.settings.redis_url)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if worker.process.poll() is not None:
                tail = log.read_bytes()[-2000:].decode(errors="replace")
                raise RuntimeError(f"worker exited; the end of its log:\n{tail}")
            if client.exists(  # the worker declared its queue binding: it consumes
                    f"{keys.celery_keyprefix}_kombu.binding.{queue}"):
                client.close()
                return worker
            time.sleep(0.2)
        tail = log.read_bytes()[-2000:].decode(errors="replace")
        raise TimeoutError(f"worker not ready after 90 s; the end of its log:\n{tail}")


@contextlib.contextmanager
def pixelcheck_stack(args: argparse.Namespace, *, server: bool = True, workers: int = 0, webhook_workers: int = 0,
                     server_env: dict[str, str] | None = None, **overrides: object) -> Iterator[Stack]:
    """A migrated database, a Redis namespace, the server and workers; all removed again afterwards.
    server_env: environment variables for the server processes only."""
    workdir = Path(tempfile.mkdtemp(prefix="pixelcheck-bench-"))
    database = ""
    embedded: EmbeddedRedis | None = None
    stack: Stack | None = None
    try:
        url = ""
        if args.database_url:
            database = f"pixelcheck_bench_{secrets.token_hex(4)}"
            _mysql(args.database_url, f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
            url = make_url(args.database_url).set(database=database).render_as_string(hide_password=False)
        redis_url = args.redis_url
        if not redis_url:
            embedded = EmbeddedRedis(workdir / "redis").start()
            redis_url = embedded.url
        settings = Settings.from_env(environ={}, env_file="/nonexistent").with_overrides(
            data_dir=str(workdir), database_url=url, redis_url=redis_url,
            redis_key_prefix=f"pixelcheck-bench-{secrets.token_hex(4)}", log_level="WARNING",
            signin_max_failures=10_000, signin_address_max_failures=10_000, **overrides)
        upgrade(settings.resolved_database_url)
        stack = Stack(settings, workdir, server_env=dict(server_env or {}))
        if server:
            stack.start_server()
        for _ in range(workers):
            stack.start_worker()
        for _ in range(webhook_workers):
            stack.start_worker(webhooks=True)
        yield stack
    finally:
        if stack is not None:
            for process in [*stack.workers, *([stack.server] if stack.server else [])]:
                process.stop()
        if embedded is not None:
            embedded.stop()
        if database:
            _mysql(args.database_url, f"DROP DATABASE IF EXISTS `{database}`")
        shutil.rmtree(workdir, ignore_errors=True)


def _mysql(server_url: str, statement: str) -> None:
    url = make_url(server_url).set(database="")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


@contextlib.contextmanager
def baseline_server() -> Iterator[tuple[str, ChildProcess]]:
    """The bare grpc.aio server of baseline.py (echo and client-streaming sink), in a child process."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="pixelcheck-bench-baseline-"))
    process = ChildProcess([str(HERE / "baseline.py"), str(port)], {}, workdir / "baseline.log")
    try:
        wait_serving(f"127.0.0.1:{port}", process)
        yield f"127.0.0.1:{port}", process
    finally:
        process.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@contextlib.contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """A real S3-compatible server (moto in server mode) with an empty bucket, as Settings overrides."""
    import urllib.request

    import boto3

    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="pixelcheck-bench-s3-"))
    process = ChildProcess(["-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], {}, workdir / "s3.log")
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.process.poll() is not None:
                    raise RuntimeError(f"the S3 server did not start; see {process.log_path}") from None
                time.sleep(0.2)
        overrides = {"blob_store": "s3", "s3_bucket": "pixelcheck-bench", "s3_prefix": "blobs/",
                     "s3_endpoint_url": endpoint, "s3_region": "us-east-1", "s3_addressing_style": "path",
                     "s3_access_key_id": "bench", "s3_secret_access_key": "bench-secret"}
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                     aws_secret_access_key="bench-secret").create_bucket(Bucket="pixelcheck-bench")
        yield overrides
    finally:
        process.stop()
        shutil.rmtree(workdir, ignore_errors=True)
