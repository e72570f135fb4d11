"""`pixelcheck dev`: starts everything, stops everything in order, leaves no process behind.

Most tests drive `run_stack` with small stand-in programs, so the process handling is checked on its
own; the last one runs the real `pixelcheck dev` and asks its health service.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

STAND_IN = """
import os, signal, socket, subprocess, sys, time

role, log = sys.argv[1], sys.argv[2]
exit_after = float(sys.argv[3]) if len(sys.argv) > 3 else None

def note(line):
    with open(log, "a") as out:
        out.write(line + "\\n")

def stop(signum, frame):
    note(f"{role} stopping")
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
note(f"{role} redis {os.environ['PIXELCHECK_REDIS_URL']}")
print(f"{role} chatter on its own output", flush=True)  # what Celery's banner and log lines stand for
if role == "server":
    host, port = os.environ["PIXELCHECK_GRPC_ADDRESS"].rsplit(":", 1)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, int(port)))
    listener.listen()
if role == "worker":
    # Like Celery's pool: a process of its own that the worker does not stop when it is told to.
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
started = time.monotonic()
while exit_after is None or time.monotonic() - started < exit_after:
    time.sleep(0.05)
note(f"{role} exits by itself")
sys.exit(3)
"""

DRIVER = """
import json, sys
from pixelcheck.devstack import run_stack
from pixelcheck.settings import Settings

config = json.loads(sys.argv[1])
settings = Settings.from_env(environ={}, env_file="/nonexistent").with_overrides(**config["settings"])
sys.exit(run_stack(settings, migrate=config["migrate"], server=config["server"],
                   background=config["background"], redis_port=None))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def is_running(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def descendants(pid: int) -> set[int]:
    """Every live process below pid, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return {child for child in found if is_running(child)}


def wait_for_text(path: Path, text: str, process: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode} before printing {text!r}:\n{content}")
        time.sleep(0.1)
    pytest.fail(f"{text!r} not printed within {timeout:g}s:\n{path.read_text() if path.exists() else ''}")


class Stack:
    """A `run_stack` run in a child process with stand-in programs, its output in a file."""

    def __init__(self, folder: Path, *, migrate_code: int = 0, worker_exits_after: float | None = None) -> None:
        self.folder = folder
        self.log = folder / "programs.log"
        self.output = folder / "output.txt"
        self.address = f"127.0.0.1:{free_port()}"
        stand_in = folder / "stand_in.py"
        stand_in.write_text(STAND_IN)
        worker_args = [] if worker_exits_after is None else [str(worker_exits_after)]
        self.config = {
            "settings": {"data_dir": str(folder / "var"), "grpc_address": self.address},
            "migrate": [sys.executable, "-c", f"raise SystemExit({migrate_code})"],
            "server": [sys.executable, str(stand_in), "server", str(self.log)],
            "background": {
                "worker": [sys.executable, str(stand_in), "worker", str(self.log), *worker_args],
                "beat": [sys.executable, str(stand_in), "beat", str(self.log)],
            },
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", DRIVER, json.dumps(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self.process

    def wait_until_running(self) -> set[int]:
        """Wait for the banner; return the pids of every process the stack started."""
        assert self.process is not None
        wait_for_text(self.output, "PixelCheck is running", self.process, timeout=60)
        return descendants(self.process.pid)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """A factory of Stack runs; whatever still runs at the end of the test is killed."""
    created: list[Stack] = []

    def make(*, migrate_code: int = 0, worker_exits_after: float | None = None) -> Stack:
        created.append(Stack(tmp_path, migrate_code=migrate_code, worker_exits_after=worker_exits_after))
        return created[-1]

    yield make
    for run in created:
        run.close()


def assert_all_gone(pids: Sequence[int] | set[int]) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(is_running(pid) for pid in pids):
        time.sleep(0.05)
    assert not [pid for pid in pids if is_running(pid)], "processes left behind"


def test_ctrl_c_stops_server_first_then_the_rest_and_leaves_no_process(stack: Callable[..., Stack]) -> None:
    run = stack()
    process = run.start()
    started = run.wait_until_running()
    assert len(started) >= 5  # valkey, worker, the worker's own child, beat, server

    process.send_signal(signal.SIGINT)

    assert process.wait(timeout=60) == 0
    assert_all_gone(started)
    notes = run.log.read_text().splitlines()
    stops = [line for line in notes if line.endswith("stopping")]
    assert stops[0] == "server stopping"
    assert sorted(stops[1:]) == ["beat stopping", "worker stopping"]


def test_programs_get_the_embedded_redis_url_and_it_is_printed(stack: Callable[..., Stack]) -> None:
    run = stack()
    process = run.start()
    run.wait_until_running()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0

    urls = {line.split(" redis ")[1] for line in run.log.read_text().splitlines() if " redis " in line}
    assert len(urls) == 1
    (url,) = urls
    assert url.startswith("redis://127.0.0.1:")
    output = run.output.read_text()
    assert url in output
    assert f"grpcurl -plaintext {run.address} list" in output


def test_start_up_is_quiet_and_ends_with_the_running_block(stack: Callable[..., Stack]) -> None:
    run = stack()
    process = run.start()
    run.wait_until_running()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0

    output = run.output.read_text()
    assert "chatter" not in output  # the programs' own output goes to their log files
    for name in ("server", "worker", "beat"):
        assert f"{name} chatter on its own output" in (run.folder / "var" / "logs" / f"{name}.log").read_text()
    before_stop = output.split("Stopping PixelCheck")[0].strip().splitlines()
    assert len(before_stop) <= 12
    assert before_stop[-1] == "Press Ctrl-C to stop."
    assert any(line.startswith("PixelCheck is running on ") for line in before_stop[-8:])
    assert f"logs:      {run.folder / 'var' / 'logs'}/" in output


def test_a_program_exiting_by_itself_stops_the_rest_and_fails(stack: Callable[..., Stack]) -> None:
    run = stack(worker_exits_after=2.0)
    process = run.start()
    started = run.wait_until_running()

    assert process.wait(timeout=60) == 1
    assert_all_gone(started)
    output = run.output.read_text()
    assert "The worker" in output and "exited unexpectedly with code 3" in output
    assert f"Last lines of {run.folder / 'var' / 'logs' / 'worker.log'}:\n  worker chatter on its own output" in output


def test_failed_migrations_start_nothing_else(stack: Callable[..., Stack]) -> None:
    run = stack(migrate_code=2)
    process = run.start()

    assert process.wait(timeout=60) == 1
    assert "Database migrations failed (exit code 2)" in run.output.read_text()
    assert not run.log.exists()


def test_a_busy_grpc_address_is_refused_before_anything_starts(stack: Callable[..., Stack]) -> None:
    run = stack()
    host, port = run.address.rsplit(":", 1)
    with socket.socket() as taken:
        taken.bind((host, int(port)))
        taken.listen()
        process = run.start()
        assert process.wait(timeout=60) == 1
    assert f"{run.address} is already in use" in run.output.read_text()
    assert not run.log.exists()


@pytest.mark.slow
def test_pixelcheck_dev_serves_health_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    pytest.importorskip("pixelcheck.api.server", reason="server not built yet")
    from grpc import insecure_channel
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    address = f"127.0.0.1:{free_port()}"
    env = {name: value for name, value in os.environ.items() if not name.startswith("PIXELCHECK_")}
    env.update(PIXELCHECK_DATA_DIR=str(tmp_path / "var"), PIXELCHECK_GRPC_ADDRESS=address)
    output = tmp_path / "output.txt"
    with output.open("wb") as out:
        # cwd is the temporary folder so that no .env file of the developer's is read.
        process = subprocess.Popen(
            [sys.executable, "-m", "pixelcheck", "dev"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        banner = wait_for_text(output, "PixelCheck is running", process, timeout=180)
        assert f"grpcurl -plaintext {address} list" in banner
        started = descendants(process.pid)

        with insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + 60
            while True:
                status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
                if status == health_pb2.HealthCheckResponse.SERVING or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert status == health_pb2.HealthCheckResponse.SERVING
        # Beside the inference worker, a webhooks worker consumes the webhook queue.
        wait_for_text(tmp_path / "var" / "logs" / "webhooks.log", "ready.", process, timeout=60)

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=90) == 0, output.read_text()[-3000:]
        assert_all_gone(started)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
