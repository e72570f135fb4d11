"""`pixelcheck client …` and `pixelcheck health` as a user runs them: real processes against the live server
and a real worker, asserting on what they print and on the exit codes scripts rely on."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from pixelcheck.v1 import auth_pb2, common_pb2

from tests import images
from tests.e2e.flows import PASSWORD, fails, new_admin, unique_username
from tests.e2e.servers import LiveServer
from tests.processes import WorkerProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")

UNREACHABLE_ADDRESS = "127.0.0.1:1"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> object:
        return json.loads(self.stdout)


@dataclass
class Cli:
    """The `pixelcheck` command for one user: their own config folder and a working folder."""

    home: Path

    @property
    def credentials(self) -> Path:
        return self.home / "config" / "pixelcheck" / "credentials.json"

    async def __call__(self, *args: str, stdin: str = "") -> Run:
        # A child process, not main() in this process: the live server needs this event loop free.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELCHECK_")}
        env.update(XDG_CONFIG_HOME=str(self.home / "config"), HOME=str(self.home))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pixelcheck", *args, cwd=self.home, env=env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=180)
        return Run(process.returncode or 0, out.decode(), err.decode())


async def signed_in_cli(live_server: LiveServer, tmp_path: Path, prefix: str = "cli") -> tuple[Cli, str, str]:
    """A new account signed up and in through the CLI: the Cli, the username and the user id."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    cli = Cli(tmp_path)
    username = unique_username(prefix)
    signup = await cli("client", "signup", username, "--email", f"{username}@example.org", "--password-stdin",
                       "--addr", live_server.address, "--json", stdin=PASSWORD + "\n")
    assert signup.code == 0, signup.stderr
    user = signup.json()
    assert user["username"] == username and user["roles"] == ["ROLE_USER"]  # type: ignore[index]
    login = await cli("client", "login", username, "--password-stdin", "--addr", live_server.address,
                      stdin=PASSWORD + "\n")
    assert login.code == 0, login.stderr
    assert f"Signed in to {live_server.address} as {username} (USER)" in login.stdout
    return cli, username, user["id"]  # type: ignore[index]


async def test_login_saves_the_session_readable_by_the_owner_only(live_server: LiveServer, tmp_path: Path):
    cli, username, _ = await signed_in_cli(live_server, tmp_path)
    assert stat.S_IMODE(cli.credentials.stat().st_mode) == 0o600
    saved = json.loads(cli.credentials.read_text())
    assert saved["address"] == live_server.address
    assert saved["session"]["username"] == username and saved["session"]["refresh_token"]


async def test_upload_watch_result_and_list_show_the_verdict(live_server: LiveServer, worker: WorkerProcess,
                                                             tmp_path: Path):
    cli, _, _ = await signed_in_cli(live_server, tmp_path)
    (tmp_path / "dunes.jpg").write_bytes(images.jpeg(900, 600, seed=31))
    (tmp_path / "lake.png").write_bytes(images.png(400, 300, seed=32))

    uploaded = await cli("client", "upload", "dunes.jpg", "lake.png", "--watch", "--json")
    assert uploaded.code == 0, uploaded.stderr
    entries = uploaded.json()
    assert [e["upload"]["image"]["filename"] for e in entries] == ["dunes.jpg", "lake.png"]  # type: ignore[index]
    for entry in entries:  # type: ignore[union-attr]
        assert entry["result"]["state"] == "ANALYSIS_STATE_SUCCEEDED"
        assert entry["result"]["label"] in ("LABEL_AI", "LABEL_REAL") and entry["result"]["signals"]
    image_id = entries[0]["upload"]["image"]["id"]  # type: ignore[index]
    assert uploaded.stderr == ""  # no progress bar when stderr is not a terminal

    shown = await cli("client", "result", image_id)
    assert shown.code == 0, shown.stderr
    label = entries[0]["result"]["label"].removeprefix("LABEL_")  # type: ignore[index]
    assert f"Image       {image_id}  dunes.jpg" in shown.stdout
    assert "State       SUCCEEDED (DONE, 100%)" in shown.stdout
    assert f"Verdict     {label}, confidence" in shown.stdout and "SIGNAL" in shown.stdout

    listed = await cli("client", "list")
    assert listed.code == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["IMAGE", "ID", "FILE", "STATE", "LABEL", "CONFIDENCE", "BAND"]
    assert [row.split()[1] for row in rows] == ["lake.png", "dunes.jpg"]  # newest first

    only_png = await cli("client", "list", "--filename", ".png", "--json")
    assert [r["filename"] for r in only_png.json()] == ["lake.png"]  # type: ignore[union-attr]


async def test_professional_creates_and_downloads_a_csv_report(live_server: LiveServer, worker: WorkerProcess,
                                                               tmp_path: Path):
    cli, username, user_id = await signed_in_cli(live_server, tmp_path, "clipro")
    admin = await new_admin(live_server)
    await live_server.auth.SetUserRoles(auth_pb2.SetUserRolesRequest(
        user_id=user_id, roles=[common_pb2.ROLE_USER, common_pb2.ROLE_PROFESSIONAL]), metadata=admin.metadata)
    assert (await cli("client", "login", username, "--password-stdin", stdin=PASSWORD + "\n")).code == 0
    (tmp_path / "case.jpg").write_bytes(images.jpeg(640, 480, seed=33))
    uploaded = await cli("client", "upload", "case.jpg", "--watch", "--json")
    image_id = uploaded.json()[0]["upload"]["image"]["id"]  # type: ignore[index]

    created = await cli("client", "report", "create", image_id, "--format", "csv", "--title", "Case 33",
                        "--wait", "--json")
    assert created.code == 0, created.stderr
    report = created.json()
    assert report["state"] == "REPORT_STATE_READY" and report["image_ids"] == [image_id]  # type: ignore[index]

    downloaded = await cli("client", "report", "download", report["id"], "-o", "case.csv")  # type: ignore[index]
    assert downloaded.code == 0, downloaded.stderr
    assert downloaded.stdout.strip() == "Saved case.csv"
    assert image_id in (tmp_path / "case.csv").read_text(encoding="utf-8")

    into_new_folder = await cli("client", "report", "download", report["id"], "-o", "reports/")  # type: ignore[index]
    assert into_new_folder.code == 0, into_new_folder.stderr
    [saved] = (tmp_path / "reports").iterdir()
    assert into_new_folder.stdout.strip() == f"Saved reports/{saved.name}" and saved.suffix == ".csv"
    assert saved.read_bytes() == (tmp_path / "case.csv").read_bytes()

    no_folder = await cli("client", "report", "download", report["id"], "-o", "nowhere/case.csv")  # type: ignore[index]
    assert no_folder.code == 2
    assert no_folder.stderr.strip() == ("pixelcheck: cannot save the report as nowhere/case.csv: the folder "
                                        "nowhere does not exist (end the path with / to save into a new folder)")
    assert not (tmp_path / "nowhere").exists()


async def test_exit_codes_tell_usage_refusal_and_unreachable_apart(live_server: LiveServer, tmp_path: Path):
    cli = Cli(tmp_path)
    not_signed_in = await cli("client", "list", "--addr", live_server.address)
    assert not_signed_in.code == 2 and "not signed in" in not_signed_in.stderr

    wrong = await cli("client", "login", "nobody", "--password-stdin", "--addr", live_server.address,
                      stdin="wrong password\n")
    assert wrong.code == 1
    assert "UNAUTHENTICATED INVALID_CREDENTIALS" in wrong.stderr and "request id" in wrong.stderr
    assert not cli.credentials.exists()

    unreachable = await cli("client", "login", "x", "--password-stdin", "--addr", UNREACHABLE_ADDRESS,
                            "--timeout", "2", "--json", stdin="x\n")
    assert unreachable.code == 3
    assert json.loads(unreachable.stderr)["error"]["code"] == "UNAVAILABLE"

    signed_in, _, _ = await signed_in_cli(live_server, tmp_path / "other")
    missing = await signed_in("client", "result", "0" * 32)
    assert missing.code == 1 and "NOT_FOUND" in missing.stderr
    no_file = await signed_in("client", "upload", "absent.jpg")
    assert no_file.code == 2 and "absent.jpg" in no_file.stderr
    bad_usage = await signed_in("client", "report", "create")
    assert bad_usage.code == 2


async def test_logout_ends_the_session_and_deletes_the_saved_tokens(live_server: LiveServer, tmp_path: Path):
    cli, _, _ = await signed_in_cli(live_server, tmp_path)
    refresh_token = json.loads(cli.credentials.read_text())["session"]["refresh_token"]
    out = await cli("client", "logout")
    assert (out.code, out.stdout.strip()) == (0, "Signed out")
    assert not cli.credentials.exists()
    revoked = await fails(live_server.auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=refresh_token)))
    assert revoked.reason == "REFRESH_TOKEN_REVOKED"
    after = await cli("client", "list")
    assert after.code == 2


async def test_health_exits_zero_only_when_serving(live_server: LiveServer, tmp_path: Path):
    cli = Cli(tmp_path)
    serving = await cli("health", "--addr", live_server.address)
    assert (serving.code, serving.stdout.strip()) == (0, "SERVING")
    ingestion = await cli("health", "--addr", live_server.address, "--service", "pixelcheck.v1.IngestionService",
                          "--json")
    assert ingestion.json() == {"address": live_server.address, "service": "pixelcheck.v1.IngestionService",
                                "status": "SERVING"}
    unknown = await cli("health", "--addr", live_server.address, "--service", "pixelcheck.v1.NoSuchService")
    assert (unknown.code, unknown.stdout.strip()) == (1, "NOT_FOUND")
    down = await cli("health", "--addr", UNREACHABLE_ADDRESS, "--timeout", "1")
    assert (down.code, down.stdout.strip()) == (1, "UNREACHABLE")
    usage = await cli("health", "--timeout", "soon")
    assert usage.code == 2
