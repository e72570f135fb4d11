"""Operator commands end to end: `pixelcheck token issue-service|list|revoke`, `users disable|enable|
sign-out-everywhere` and `audit verify` against the live server's database, and one-line answers (exit 1)
for a database without the schema, an outdated schema, an unreachable server and a bad URL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest
from alembic import command
from pixelcheck.v1 import auth_pb2

from pixelcheck import cli
from pixelcheck.db import _alembic_config
from pixelcheck.settings import Settings
from tests.e2e.flows import bearer, fails, new_user, sign_in, unique_username

ME = auth_pb2.GetCurrentUserRequest()
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], live_server) -> Run:
    """Run `pixelcheck ARGS` in-process with the live server's settings (database_url overridable)."""
    monkeypatch.setattr(cli, "configure_logging", lambda settings: None)  # keep pytest's log capture

    def invoke(*args: str, database_url: str | None = None) -> tuple[int, str, str]:
        settings: Settings = live_server.settings
        for key, value in settings.to_env().items():
            monkeypatch.setenv(key, value)
        if database_url is not None:
            monkeypatch.setenv("PIXELCHECK_DATABASE_URL", database_url)
        capsys.readouterr()
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


async def test_an_issued_service_token_is_listed_and_revoking_it_shuts_it_out(run, live_server):
    name = unique_username("svc")
    code, out, err = run("token", "issue-service", name, "--ttl", "1h")
    assert code == 0
    token = out.strip()
    assert (await live_server.auth.GetCurrentUser(ME, metadata=bearer(token))).user.username == name
    code, out, _ = run("token", "list", "--service", name)
    assert code == 0
    rows = out.splitlines()[1:]
    assert len(rows) == 1 and rows[0].split()[1] == name and rows[0].split()[-1].startswith("operator:")
    token_id = rows[0].split()[0]
    assert token_id in err  # the issue command named it
    code, out, _ = run("token", "revoke", token_id)
    assert code == 0 and "revoked" in out
    deadline = time.monotonic() + 3.5
    while True:
        try:
            await live_server.auth.GetCurrentUser(ME, metadata=bearer(token))
        except grpc.aio.AioRpcError as error:
            assert error.code() is grpc.StatusCode.UNAUTHENTICATED
            break
        assert time.monotonic() < deadline, "the revoked token still works"
        await asyncio.sleep(0.05)
    code, _, err = run("token", "revoke", "0" * 32)
    assert code == 1 and err.strip() == "pixelcheck: No such service token"


async def test_users_disable_enable_and_sign_out_everywhere(run, live_server):
    user = await new_user(live_server.auth)
    code, out, _ = run("users", "disable", user.username)
    assert code == 0 and "disabled" in out
    assert (await fails(sign_in(live_server.auth, user.username))).reason == "ACCOUNT_DISABLED"
    assert run("users", "enable", user.username)[0] == 0
    fresh = await sign_in(live_server.auth, user.username)
    code, out, _ = run("users", "sign-out-everywhere", user.username)
    assert code == 0 and "every session ended" in out
    refreshing = await fails(live_server.auth.RefreshToken(auth_pb2.RefreshTokenRequest(
        refresh_token=fresh.refresh_token)))
    assert refreshing.reason == "REFRESH_TOKEN_REVOKED"


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {err!r}"
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("args", [("users", "list"), ("token", "list"), ("users", "create-admin", "--username",
                                   "root", "--email", "root@example.org", "--password-stdin"),
                                  ("audit", "verify")])
def test_a_database_without_the_schema_is_named_with_the_fix(run, fresh_database_url, args):
    code, _, err = run(*args, database_url=fresh_database_url())
    assert code == 1
    assert "has no PixelCheck schema" in one_line(err) and "pixelcheck db upgrade" in err


def test_an_outdated_schema_is_named_with_the_fix(run, fresh_database_url):
    url = fresh_database_url()
    command.upgrade(_alembic_config(url), "0001")
    code, _, err = run("token", "list", database_url=url)
    assert code == 1
    assert "revision 0001" in one_line(err) and "pixelcheck db upgrade" in err
    assert run("db", "upgrade", database_url=url)[0] == 0
    assert run("db", "check", database_url=url)[0] == 0
    assert run("token", "list", database_url=url)[0] == 0


@pytest.mark.parametrize("args", [("users", "list"), ("token", "revoke", "0" * 32), ("db", "upgrade"),
                                  ("db", "check"), ("audit", "verify")])
def test_an_unreachable_database_is_named_in_one_line(run, args):
    code, _, err = run(*args, database_url="mysql+pymysql://root@127.0.0.1:1/pixelcheck")
    assert code == 1
    line = one_line(err)
    assert "cannot reach the database at mysql+pymysql://root@127.0.0.1:1/pixelcheck" in line
    assert "PIXELCHECK_DATABASE_URL" in line


@pytest.mark.parametrize("url", ["not a database url", "nosuchdb://host/x"])
def test_a_bad_database_url_is_named_in_one_line(run, url):
    for args in (("users", "list"), ("db", "upgrade")):
        code, _, err = run(*args, database_url=url)
        assert code == 1
        assert "is not a usable database URL" in one_line(err)
