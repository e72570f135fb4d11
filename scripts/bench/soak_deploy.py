"""The deployment a soak runs, as an operator would: N server processes under their supervisor, two inference
workers, the webhooks worker and beat, with S3 (moto) behind a proxy that can be slowed down.

Redis and MariaDB are the soak's own processes wherever a fault restarts them, so the machine's shared servers
are never touched: an embedded Valkey by default, a `redis-server` of its own on a free port with --redis-url,
and with --database-url a throwaway `mariadbd` (datadir from mariadb-install-db) on a free port.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
from stack import ChildProcess, Stack, free_port, pixelcheck_stack, s3_server

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the test suite's process helpers, from a clone
from pixelcheck.embedded_redis import EmbeddedRedis  # noqa: E402
from tests.processes import BeatProcess  # noqa: E402
from tests.reliability.proxy import TcpProxy  # noqa: E402


class OwnRedis:
    """A Redis the soak may restart on the same port: the embedded Valkey, or `redis-server` from PATH."""

    def __init__(self, folder: Path, *, real: bool) -> None:
        self.folder = folder
        self.port = free_port()
        self.kind = "redis-server" if real else "embedded Valkey"
        self._embedded: EmbeddedRedis | None = None
        self._process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        if self._embedded is not None:
            return self._embedded.pid
        return self._process.pid if self._process is not None else None

    def start(self) -> OwnRedis:
        if self.kind == "embedded Valkey":
            self._embedded = EmbeddedRedis(self.folder, port=self.port).start()
            return self
        with open(self.folder / "redis.log", "ab") as log:
            self._process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.folder)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        _wait(lambda: _redis_answers(self.url), 20, f"redis-server on port {self.port}")
        return self

    def stop(self) -> None:
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(20)
        self._process = None


class OwnMariaDB:
    """A throwaway `mariadbd` on a free port with a datadir of its own; root without a password."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={folder / 'data'}", "--skip-test-db",
                        "--auth-root-authentication-method=normal", f"--user={_user()}"],
                       check=True, capture_output=True, timeout=120)

    @property
    def url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> OwnMariaDB:
        with open(self.folder / "mariadbd.log", "ab") as log:
            self._process = subprocess.Popen(
                ["mariadbd", "--no-defaults", f"--datadir={self.folder / 'data'}", f"--port={self.port}",
                 "--bind-address=127.0.0.1", f"--socket={self.folder / 'mariadbd.sock'}", f"--user={_user()}",
                 f"--pid-file={self.folder / 'mariadbd.pid'}", "--innodb-buffer-pool-size=128M",
                 "--max-connections=500", "--skip-log-bin"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        _wait(self._answers, 60, f"mariadbd on port {self.port}")
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()  # a clean shutdown: every client connection is cut
            self._process.wait(60)
        self._process = None

    def _answers(self) -> bool:
        try:
            pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=1).close()
            return True
        except pymysql.MySQLError:
            return False


@dataclass
class Deployment:
    stack: Stack
    beat: BeatProcess
    redis: OwnRedis
    database: OwnMariaDB | None
    s3_proxy: TcpProxy
    killed: set[int] = field(default_factory=set)  # pids the soak killed on purpose
    closing: bool = False  # being stopped: nothing is restarted any more

    @property
    def settings(self):  # type: ignore[no-untyped-def]
        return self.stack.settings

    def workers(self, *, webhooks: bool) -> list[ChildProcess]:
        return [w for w in self.stack.workers
                if ("--webhooks" in w.process.args) == webhooks and w.process.poll() is None]

    def server_children(self) -> list[int]:
        assert self.stack.server is not None
        pid = self.stack.server.pid
        with contextlib.suppress(OSError):
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        return []

    def processes(self) -> dict[str, int]:
        """Role -> pid of every running process of the service, for the memory samplers."""
        assert self.stack.server is not None
        found = {"server supervisor": self.stack.server.pid, "beat": self.beat.pid}
        found.update({f"server child {i}": pid for i, pid in enumerate(sorted(self.server_children()))})
        found.update({f"inference worker {i}": w.pid for i, w in enumerate(self.workers(webhooks=False))})
        found.update({f"webhooks worker {i}": w.pid for i, w in enumerate(self.workers(webhooks=True))})
        for name, own in ((self.redis.kind, self.redis), ("mariadbd", self.database)):
            if own is not None and own.pid is not None:
                found[name] = own.pid
        return found

    def kill_worker(self, *, webhooks: bool) -> None:
        """SIGKILL one worker (of the inference or the webhooks kind)."""
        victim = self.workers(webhooks=webhooks)[0]
        self.killed.add(victim.pid)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.process.wait(10)
        victim.stop()  # closes its log
        self.stack.workers.remove(victim)

    def start_worker(self, *, webhooks: bool) -> None:
        """A replacement worker, as a process manager would start one; returns once it consumes its queue."""
        self.stack.start_worker(webhooks=webhooks)

    def restart_exited(self) -> list[str]:
        """What a process manager does: start again each worker or beat that exited although nobody stopped it;
        a line for each (its role, exit code and the last line of its log that says why)."""
        found: list[str] = []
        if self.closing:
            return found
        for worker in list(self.stack.workers):
            if worker.process.poll() is not None and worker.pid not in self.killed:
                webhooks = "--webhooks" in worker.process.args
                found.append(f"{'webhooks' if webhooks else 'inference'} worker exited {worker.process.returncode}"
                             f" ({_why(worker.log_path)})")
                worker.stop()
                self.stack.workers.remove(worker)
                self.stack.start_worker(webhooks=webhooks)
        if not self.beat.running:
            found.append(f"beat exited {self.beat.process.returncode if self.beat.process else '?'} "
                         f"({_why(self.beat.log_path)})")
            self.beat = BeatProcess(self.beat.settings, self.beat.log_path).start()
        assert self.stack.server is not None
        if self.stack.server.process.poll() is not None:
            found.append(f"the server supervisor exited {self.stack.server.process.returncode}")
        return found

    def kill_server_child(self) -> None:
        """SIGKILL one server process; its supervisor restarts it."""
        os.kill(self.server_children()[0], signal.SIGKILL)


def soak_overrides(processes: int) -> dict[str, object]:
    """Settings of the soak's deployment: short stale and dispatch periods so recovery fits into a short run,
    imports and webhooks to the soak's own HTTP servers on 127.0.0.1."""
    return {"server_processes": processes, "url_fetch_allow": "127.0.0.1/32", "analysis_stale_seconds": 30,
            "task_time_limit_seconds": 45,
            "webhook_dispatch_interval_seconds": 1.0, "webhook_retry_base_seconds": 2.0,
            "webhook_timeout_seconds": 5.0, "webhook_connect_timeout_seconds": 2.0,
            "webhook_lease_margin_seconds": 5.0}


@contextlib.contextmanager
def deployment(args: argparse.Namespace, workdir: Path, *, faults: bool,
               server_env: dict[str, str] | None = None) -> Iterator[Deployment]:
    """Start the whole service; everything is stopped and removed again afterwards. server_env: environment
    variables for the server processes only."""
    redis = OwnRedis(workdir / "redis", real=bool(args.redis_url and shutil.which("redis-server")))
    database = OwnMariaDB(workdir / "mariadb") if args.database_url and faults else None
    proxy: TcpProxy | None = None
    try:
        redis.start()
        if database is not None:
            database.start()
        backends = argparse.Namespace(database_url=database.url if database else args.database_url,
                                      redis_url=redis.url)
        with s3_server() as s3:
            moto_port = int(s3["s3_endpoint_url"].rsplit(":", 1)[1])
            proxy = TcpProxy("127.0.0.1", moto_port).start()
            s3 = {**s3, "s3_endpoint_url": f"http://127.0.0.1:{proxy.port}"}
            with pixelcheck_stack(backends, workers=2, webhook_workers=1, server_env=server_env, **s3,
                                  **soak_overrides(args.server_processes)) as stack:
                deployed: Deployment | None = None
                try:
                    beat = BeatProcess(stack.settings.with_overrides(log_level="INFO"),  # it says "Starting" at INFO
                                       stack.workdir / "beat.log").start()
                    deployed = Deployment(stack, beat, redis, database, proxy)
                    yield deployed
                finally:  # the stack's folder goes; its logs stay for whoever reads a failed check
                    if deployed is not None:
                        deployed.closing = True
                        deployed.beat.stop()
                    (workdir / "logs").mkdir(exist_ok=True)
                    for log in stack.workdir.glob("*.log"):
                        shutil.copy(log, workdir / "logs" / log.name)
    finally:
        if proxy is not None:
            proxy.close()
        if database is not None:
            database.stop()
        redis.stop()


def _why(log: Path) -> str:
    """The last line of a log that names an error, or its last line."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    fatal = [line for line in lines if "CRITICAL" in line or "Unrecoverable" in line]
    errors = [line for line in lines if "ERROR" in line]
    return (fatal or errors or lines or ["empty log"])[-1][:160]


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _redis_answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _wait(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not answer within {timeout:g} s")
        time.sleep(0.2)
