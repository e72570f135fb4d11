"""`pixelcheck dev`: the whole service on one machine, with nothing installed by hand.

One SQLite file and an embedded Valkey server under the data directory, migrations applied, then a
Celery worker, Celery beat and the gRPC server as child processes. Ctrl-C (or SIGTERM) stops the
server first so it can drain, then the worker and beat, then Valkey; nothing is left running.
Start-up stays quiet: each child writes to its own file under <data dir>/logs, the terminal shows a few
progress lines and then, last, the block that says where PixelCheck listens. A child that fails has the
end of its log printed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields
from pathlib import Path
from types import FrameType
from typing import TextIO

from pixelcheck.embedded_redis import EmbeddedRedis, EmbeddedRedisError, die_with_parent_preexec
from pixelcheck.settings import PREFIX, Settings

DEFAULT_REDIS_PORT = 6390  # beside, not on, a system Redis's 6379; a free port is taken when it is busy
READY_TIMEOUT_SECONDS = 120.0  # the server loads the detector model before it listens
BACKGROUND_STOP_TIMEOUT_SECONDS = 15.0  # Celery's warm shutdown lets a running task finish
POLL_SECONDS = 0.2
LOG_TAIL_LINES = 20  # of a failed child's log, printed with the failure


def run_dev(settings: Settings, *, out: TextIO | None = None) -> int:
    """Run migrations, worker, beat and gRPC server on this machine until Ctrl-C or SIGTERM.

    Returns 0 after a requested stop and 1 when a part could not start or exited by itself.
    Call it from the main thread: it installs its own SIGINT, SIGTERM and SIGHUP handlers meanwhile.
    """
    pixelcheck = [sys.executable, "-m", "pixelcheck"]
    return run_stack(
        settings,
        migrate=[*pixelcheck, "db", "upgrade"],
        server=[*pixelcheck, "serve", "--processes", "1"],  # one process is plenty on a developer's machine
        background={"worker": [*pixelcheck, "worker"], "webhooks": [*pixelcheck, "worker", "--webhooks"],
                    "beat": [*pixelcheck, "beat"]},
        out=out,
    )


def run_stack(
    settings: Settings,
    *,
    migrate: Sequence[str],
    server: Sequence[str],
    background: Mapping[str, Sequence[str]],
    redis_port: int | None = DEFAULT_REDIS_PORT,
    out: TextIO | None = None,
) -> int:
    """Run the given commands as `run_dev` runs pixelcheck's own (see there); the server listens on
    settings.grpc_address. Each command gets the settings as PIXELCHECK_* variables, with the embedded
    Valkey's URL as PIXELCHECK_REDIS_URL.
    """
    out = out or sys.stdout
    host, port = _split_address(settings.grpc_address)
    if not _port_is_free(host, port):
        _say(
            out,
            f"{settings.grpc_address} is already in use: stop what listens there "
            f"or set {PREFIX}GRPC_ADDRESS to another address.",
        )
        return 1
    data_dir = Path(settings.data_dir).resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with _stop_signals() as stop:
        try:
            redis = _start_redis(data_dir / "redis", redis_port)
        except EmbeddedRedisError as exc:
            _say(out, f"The embedded Redis server did not start: {exc}")
            return 1
        try:
            settings = settings.with_overrides(
                data_dir=str(data_dir),
                database_url=settings.resolved_database_url,
                redis_url=redis.url,
            )
            env = _child_environment(settings)
            _say(out, f"Embedded Redis (Valkey) listening on {redis.url}, log in {redis.log_path}")
            _say(out, f"Applying database migrations to {settings.resolved_database_url}")
            code = _run_to_completion(migrate, env, logs / "migrate.log", stop)
            if stop.requested:
                return 0
            if code != 0:
                _say(out, f"Database migrations failed (exit code {code}); nothing else was started.\n"
                          + _log_tail(logs / "migrate.log"))
                return 1
            _say(out, f"Starting the worker, the webhooks worker, beat and the gRPC server (logs in {logs})")
            return _run_services(settings, env, server, background, stop, out, (host, port), logs)
        finally:
            redis.stop()


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path


class _StopRequest:
    """Counts SIGINT/SIGTERM/SIGHUP: the first asks for an orderly stop, a second one forces it."""

    def __init__(self) -> None:
        self.count = 0

    @property
    def requested(self) -> bool:
        return self.count > 0

    @property
    def forced(self) -> bool:
        return self.count > 1

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1


@contextmanager
def _stop_signals() -> Iterator[_StopRequest]:
    stop = _StopRequest()
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, stop.handle) for signum in handled}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run_services(
    settings: Settings,
    env: Mapping[str, str],
    server: Sequence[str],
    background: Mapping[str, Sequence[str]],
    stop: _StopRequest,
    out: TextIO,
    listen: tuple[str, int],
    logs: Path,
) -> int:
    children: list[_Child] = []
    try:
        for name, argv in (*background.items(), ("server", server)):
            log_path = logs / f"{name}.log"
            children.append(_Child(name, _spawn(argv, env, log_path), log_path))
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not _accepts_connections(*listen):
            if stop.requested:
                break
            if failed := _first_exited(children):
                return _report_exit(failed, out)
            if time.monotonic() > deadline:
                _say(
                    out,
                    f"The server did not accept connections on {settings.grpc_address} "
                    f"within {READY_TIMEOUT_SECONDS:g}s; stopping.",
                )
                return 1
            time.sleep(POLL_SECONDS)
        else:
            _say(out, _banner(settings, children))
        while not stop.requested:
            if failed := _first_exited(children):
                return _report_exit(failed, out)
            time.sleep(POLL_SECONDS)
        _say(out, "Stopping PixelCheck (press Ctrl-C again to stop at once)…")
        return 0
    finally:
        _stop_children(children, settings.grace_seconds + 5.0, stop)


def _stop_children(children: Sequence[_Child], server_timeout: float, stop: _StopRequest) -> None:
    # The server first: it flips health to NOT_SERVING and drains calls that may still enqueue tasks.
    servers = [child for child in children if child.name == "server"]
    others = [child for child in children if child.name != "server"]
    for group, timeout in ((servers, server_timeout), (others, BACKGROUND_STOP_TIMEOUT_SECONDS)):
        for child in group:
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + timeout
        while any(child.process.poll() is None for child in group):
            if time.monotonic() > deadline or stop.forced:
                break
            time.sleep(POLL_SECONDS / 2)
    for child in children:
        # Each child leads its own process group: this also ends what it started (Celery's pool).
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait()


def _start_redis(data_dir: Path, port: int | None) -> EmbeddedRedis:
    try:
        return EmbeddedRedis(data_dir, port=port, die_with_parent=True).start()
    except EmbeddedRedisError:
        if port is None:
            raise
        return EmbeddedRedis(data_dir, port=None, die_with_parent=True).start()


def _spawn(argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    # A session of its own keeps the terminal's Ctrl-C away, so that the stop order is ours.
    with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent_preexec(),
        )


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a child's log, indented, under a line naming the file."""
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        tail = []
    return "\n".join([f"Last lines of {path}:", *(f"  {line}" for line in tail)])


def _run_to_completion(argv: Sequence[str], env: Mapping[str, str], log_path: Path, stop: _StopRequest) -> int:
    process = _spawn(argv, env, log_path)
    try:
        while process.poll() is None and not stop.requested:
            time.sleep(POLL_SECONDS / 2)
    finally:
        _end(process, timeout=BACKGROUND_STOP_TIMEOUT_SECONDS)
    return process.returncode


def _end(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _child_environment(settings: Settings) -> dict[str, str]:
    # Every field is spelled out so the children see exactly these settings, not what .env says.
    env = dict(os.environ)  # PATH, HOME, locale and the like, which the children need too
    env.update({PREFIX + f.name.upper(): str(getattr(settings, f.name)) for f in fields(settings)})
    env["PYTHONUNBUFFERED"] = "1"  # children's log lines show up as they happen
    return env


def _first_exited(children: Sequence[_Child]) -> _Child | None:
    return next((child for child in children if child.process.poll() is not None), None)


def _report_exit(child: _Child, out: TextIO) -> int:
    _say(
        out,
        f"The {child.name} (pid {child.process.pid}) exited unexpectedly with code "
        f"{child.process.returncode}; stopping the rest.\n{_log_tail(child.log_path)}",
    )
    return 1


def _banner(settings: Settings, children: Sequence[_Child]) -> str:
    host, port = _split_address(settings.grpc_address)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    grpcurl_flags = "-insecure" if settings.tls_cert_file else "-plaintext"
    pids = ", ".join(f"{child.name} {child.process.pid}" for child in children)
    logs = children[-1].log_path.parent if children else Path()
    return "\n".join([
        "",
        f"PixelCheck is running on {address}",
        f"  try:       grpcurl {grpcurl_flags} {address} list",
        f"  database:  {settings.resolved_database_url}",
        f"  redis:     {settings.redis_url} (embedded Valkey)",
        f"  processes: {pids}",
        f"  logs:      {logs}/ (server.log, worker.log, webhooks.log, beat.log)",
        "Press Ctrl-C to stop.",
        "",
    ])  # fmt: skip


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    # A server listening on every interface is reached here through the loopback address.
    return ("127.0.0.1" if host in ("", "0.0.0.0", "::") else host), int(port)


def _port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _say(out: TextIO, message: str) -> None:
    print(message, file=out, flush=True)
