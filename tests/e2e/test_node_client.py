"""A second language: the Node.js client in tests/node, built from protos/ alone, signs in, uploads with
client streaming, watches with server streaming and reads the verdict from the live server and worker."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from tests import images
from tests.e2e.flows import new_user
from tests.e2e.servers import LiveServer
from tests.processes import WorkerProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


async def run(*command: str, env: dict[str, str] | None = None, timeout: float = 300) -> tuple[int, str, str]:
    # Asynchronously: the live server runs on this event loop and must keep serving meanwhile.
    process = await asyncio.create_subprocess_exec(*command, cwd=NODE_DIR, env=env, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode or 0, out.decode(), err.decode()


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary; the module is skipped where Node.js is not installed (CI has it)."""
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is not installed")
    return found


@pytest.fixture(scope="module")
async def node_modules(node: str) -> Path:
    """tests/node/node_modules, installed from the lock file when missing."""
    modules = NODE_DIR / "node_modules"
    if not (modules / "@grpc" / "grpc-js").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed")
        code, out, err = await run(npm, "ci", "--no-audit", "--no-fund")
        assert code == 0, out + err
    return modules


async def test_node_client_uploads_watches_and_reads_a_verdict(
        live_server: LiveServer, worker: WorkerProcess, node: str, node_modules: Path, tmp_path: Path) -> None:
    user = await new_user(live_server.auth, "node")
    photo = tmp_path / "meadow.jpg"
    photo.write_bytes(images.jpeg(1400, 1000, seed=41, quality=97))  # more than one 1 MiB chunk
    env = {**os.environ, "PIXELCHECK_ADDR": live_server.address, "PIXELCHECK_LOGIN": user.username,
           "PIXELCHECK_PASSWORD": user.password}

    code, out, err = await run(node, "client.mjs", str(photo), env=env)

    assert code == 0, err
    summary = json.loads(out)
    assert summary["user"] == user.username
    assert summary["content_type"] == "image/jpeg" and int(summary["size_bytes"]) == photo.stat().st_size
    assert summary["duplicate"] is False
    assert summary["stages"][-1] == "ANALYSIS_STAGE_DONE"
    assert summary["state"] == "ANALYSIS_STATE_SUCCEEDED"
    assert summary["label"] in ("LABEL_AI", "LABEL_REAL")
    assert 0.5 <= summary["confidence"] <= 1.0
    assert summary["signals"], "the verdict explains itself with signals"
    assert summary["watch_result_matches"] is True


async def test_node_client_reports_a_refused_sign_in_and_exits_one(
        live_server: LiveServer, node: str, node_modules: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PIXELCHECK_ADDR": live_server.address, "PIXELCHECK_LOGIN": "nobody_at_all",
           "PIXELCHECK_PASSWORD": "not the password"}
    photo = tmp_path / "x.png"
    photo.write_bytes(images.png(32, 32))
    code, out, err = await run(node, "client.mjs", str(photo), env=env)
    assert (code, out) == (1, "")
    assert "UNAUTHENTICATED: The login or password is wrong" in err
