"""Test infrastructure shared by every test: a database, a Redis, a key namespace, shared data, settings.

By default everything is embedded: a SQLite file in a temporary folder and a Valkey server started for
the session. Two environment variables point the suite at real servers instead:

- PIXELCHECK_TEST_DATABASE_URL: a MySQL/MariaDB URL (mysql+pymysql://user:pass@host:port/any) whose user
  may create databases; each run creates databases of its own there and drops them at the end.
- PIXELCHECK_TEST_REDIS_URL: a Redis URL; each run keeps to its own key prefix (`redis_key_prefix`).

Names are random, so several runs (and pytest-xdist workers) can share the same servers.
Server and worker fixtures live in tests/integration/conftest.py and tests/e2e/conftest.py.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from pixelcheck.embedded_redis import EmbeddedRedis
from pixelcheck.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE_URL = os.environ.get("PIXELCHECK_TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("PIXELCHECK_TEST_REDIS_URL", "")
DROP_LOCK_WAIT_SECONDS = 10  # a forgotten open transaction must not hang the end of the run


# -- database ---------------------------------------------------------------------------------------
class ScratchDatabases:
    """Creates empty databases for tests and drops them again: MySQL/MariaDB databases on the server
    named by PIXELCHECK_TEST_DATABASE_URL when it is set, SQLite files in `folder` otherwise."""

    def __init__(self, server_url: str, folder: Path) -> None:
        self._server_url = make_url(server_url) if server_url else None
        self._folder = folder
        self._created: list[str] = []

    @property
    def backend(self) -> str:
        """'mysql' or 'sqlite'."""
        return "mysql" if self._server_url is not None else "sqlite"

    def create(self) -> str:
        """A new, empty database's URL."""
        name = f"pixelcheck_t_{secrets.token_hex(6)}"
        if self._server_url is None:
            return f"sqlite:///{self._folder / f'{name}.db'}"
        self._execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        self._created.append(name)
        return self._server_url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        """Drop every database this object created."""
        while self._created:
            name = self._created.pop()
            self._execute(
                f"SET SESSION lock_wait_timeout = {DROP_LOCK_WAIT_SECONDS}",
                f"DROP DATABASE IF EXISTS `{name}`",
            )

    def _execute(self, *statements: str) -> None:
        assert self._server_url is not None
        # Connect to the server without a database: the one named in the given URL need not exist.
        server = URL.create(
            self._server_url.drivername,
            username=self._server_url.username,
            password=self._server_url.password,
            host=self._server_url.host,
            port=self._server_url.port,
            query=self._server_url.query,
        )
        engine = create_engine(server, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                for statement in statements:
                    connection.execute(text(statement))
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of this run's own, empty at the start (migrations are not applied here)."""
    databases = ScratchDatabases(TEST_DATABASE_URL, tmp_path_factory.mktemp("database"))
    try:
        yield databases.create()
    finally:
        databases.drop_all()


@pytest.fixture
def fresh_database_url(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A factory of new, empty databases for one test (migration tests); all dropped after it."""
    databases = ScratchDatabases(TEST_DATABASE_URL, tmp_path)
    try:
        yield databases.create
    finally:
        databases.drop_all()


# -- redis ------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """PIXELCHECK_TEST_REDIS_URL, or an embedded Valkey server that lives as long as the session."""
    if TEST_REDIS_URL:
        yield TEST_REDIS_URL
        return
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture(scope="session")
def redis_key_prefix() -> str:
    """This run's Redis namespace (Settings.redis_key_prefix): runs sharing a Redis never collide.
    Derive Celery queue names from it too."""
    return f"pixelcheck-test-{secrets.token_hex(6)}"


# -- S3 ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def s3_endpoint_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint of a real S3-compatible server process (moto in server mode) started for this session."""
    from tests.processes import S3Server

    server = S3Server(tmp_path_factory.mktemp("s3") / "s3-server.log").start()
    try:
        yield server.endpoint_url
    finally:
        server.stop()


def s3_settings_for(settings: Settings, endpoint_url: str) -> Settings:
    """settings with blob_store=s3 on a new, empty bucket of that server (static test credentials)."""
    from pixelcheck.blobs.s3 import make_s3_client

    s3 = settings.with_overrides(
        blob_store="s3", s3_bucket=f"pixelcheck-test-{secrets.token_hex(6)}", s3_prefix="blobs/",
        s3_endpoint_url=endpoint_url, s3_region="us-east-1", s3_addressing_style="path",
        s3_access_key_id="pixelcheck-test", s3_secret_access_key="pixelcheck-test-secret")
    make_s3_client(s3).create_bucket(Bucket=s3.s3_bucket)
    return s3


# -- shared data ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared folder: PIXELCHECK_SHARED_DIR, else ../shared beside the repository. It may be absent."""
    return Path(os.environ.get("PIXELCHECK_SHARED_DIR") or REPO_ROOT.parent / "shared")


@pytest.fixture(scope="session")
def shared_data(shared_dir: Path) -> Callable[[str], Path]:
    """`shared_data("data/detector")` is that path inside the shared folder; the test is skipped,
    naming the path, when it does not exist. The folder may be read-only: write elsewhere."""

    def find(subpath: str) -> Path:
        path = shared_dir / subpath
        if not path.exists():
            pytest.skip(f"shared data {path} is absent (set PIXELCHECK_SHARED_DIR to the shared folder)")
        return path

    return find


# -- settings ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def base_settings(
    database_url: str, redis_url: str, redis_key_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Settings for this run: its database, Redis and key prefix, a temporary data folder and fast
    password hashing. Nothing comes from the environment or a .env file; override with
    `base_settings.with_overrides(...)` where a test needs real values."""
    return Settings.from_env(environ={}, env_file="/nonexistent").with_overrides(
        database_url=database_url,
        redis_url=redis_url,
        redis_key_prefix=redis_key_prefix,
        data_dir=str(tmp_path_factory.mktemp("data")),
        argon2_time_cost=1,
        argon2_memory_cost_kib=1024,
        server_processes=1,  # one `serve` process; tests of `--processes N` ask for more
    )
