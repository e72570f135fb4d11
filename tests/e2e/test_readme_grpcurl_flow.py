"""The README's "Walkthrough with grpcurl", run as written: its fenced sh blocks, in order, in one bash
session against the live server and worker (only ADDR and the user name are substituted), with the output
of every block checked."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
from pathlib import Path

import pytest

from tests import images
from tests.e2e.servers import LiveServer
from tests.processes import WorkerProcess

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Walkthrough with grpcurl"
README_ADDR = "ADDR=127.0.0.1:50051"
README_USER = "grace.hopper"
MARKER = "::end of README block::"


def walkthrough_blocks() -> list[str]:
    """The ```sh blocks of the README section, in order."""
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION) + len(SECTION)
    end = text.find("\n## ", start)
    section = text[start:end if end != -1 else len(text)]
    return re.findall(r"^```sh\n(.*?)^```$", section, flags=re.S | re.M)


def json_messages(output: str) -> list[dict]:
    """grpcurl prints one indented JSON object per message, one after the other."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := _skip_space(output, at)) < len(output):
        message, at = decoder.raw_decode(output, at)
        found.append(message)
    return found


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def test_the_walkthrough_section_has_every_step():
    script = "\n".join(walkthrough_blocks())
    assert script.startswith(README_ADDR + "\n")
    for step in ("AuthService/SignUp", "AuthService/SignIn", "-d @", "IngestionService/UploadImage",
                 "ResultsService/WatchAnalysis", "ResultsService/GetResult", "users set-roles",
                 "ReportsService/CreateReport", "ReportsService/DownloadReport", "base64 -d",
                 "grpc.health.v1.Health/Check", "pixelcheck health --addr"):
        assert step in script, step


@pytest.mark.asyncio(loop_scope="session")
async def test_readme_grpcurl_walkthrough_runs_as_written(
        live_server: LiveServer, worker: WorkerProcess, tmp_path: Path) -> None:
    if shutil.which("jq") is None:
        pytest.skip("the walkthrough uses jq, which is not installed")
    blocks = walkthrough_blocks()
    username = f"grace_{secrets.token_hex(4)}"  # the suite shares one database
    script = "set -euo pipefail\n" + "".join(f"{block}\necho '{MARKER}'\n" for block in blocks)
    script = script.replace(README_ADDR, f"ADDR={live_server.address}").replace(README_USER, username)
    photo = images.jpeg(1600, 1200, seed=51, quality=97)  # more than one 1 MiB chunk as base64 JSON
    workdir = tmp_path / "var" / "walkthrough"  # where the README has the user put photo.jpg
    workdir.mkdir(parents=True)
    (workdir / "photo.jpg").write_bytes(photo)
    env = {**os.environ, **live_server.settings.to_env(),  # `pixelcheck users` needs the server's settings
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}

    process = await asyncio.create_subprocess_exec(
        "bash", "-c", script, cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=240)
    assert process.returncode == 0, err.decode()
    outputs = out.decode().split(MARKER)[:-1]
    assert len(outputs) == len(blocks) == 8
    listing, signup, upload, watch, result, set_roles, report, health = outputs

    assert {"pixelcheck.v1.IngestionService", "grpc.health.v1.Health"} <= set(listing.split())

    (user,) = json_messages(signup)
    assert user["user"]["username"] == username and user["user"]["roles"] == ["ROLE_USER"]

    (uploaded,) = json_messages(upload)
    image = uploaded["image"]
    assert (image["filename"], image["content_type"], int(image["size_bytes"])) == ("photo.jpg", "image/jpeg",
                                                                                     len(photo))
    assert image["sha256"] == hashlib.sha256(photo).hexdigest()
    assert image["analysis_state"] == "ANALYSIS_STATE_QUEUED"

    events = [m["event"] for m in json_messages(watch)]
    assert events[-1]["state"] == "ANALYSIS_STATE_SUCCEEDED" and events[-1]["stage"] == "ANALYSIS_STAGE_DONE"
    verdict = events[-1]["result"]
    assert verdict["label"] in ("LABEL_AI", "LABEL_REAL") and verdict["signals"]

    (fetched,) = json_messages(result)
    assert fetched["result"]["image_id"] == image["id"]
    assert fetched["result"]["label"] == verdict["label"]

    assert username in set_roles or "PROFESSIONAL" in set_roles

    announced, computed = report.split()[0], report.split()[1]
    pdf = (workdir / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert announced == computed == hashlib.sha256(pdf).hexdigest()

    overall, ingestion = json_messages(health.rsplit("}", 1)[0] + "}")
    assert overall == ingestion == {"status": "SERVING"}
    assert health.strip().endswith("SERVING")
