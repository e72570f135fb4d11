"""Database engine, sessions, the declarative Base and migrations (Alembic, in pixelcheck/migrations)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymysql
from sqlalchemy import JSON, DateTime, Engine, LargeBinary, MetaData, create_engine, event, make_url
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from pixelcheck.errors import Unavailable

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# LONGBLOB on MySQL (a plain BLOB stops at 64 KiB); BLOB elsewhere.
Blob = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
JsonDoc = JSON().with_variant(mysql.JSON(), "mysql", "mariadb")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (MySQL and SQLite store naive values)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def new_id() -> str:
    """A new opaque id: 32 lowercase hex characters."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine tuned for the backend: WAL and a busy timeout on SQLite, pre-ping on MySQL."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               pool_size=pool_size, max_overflow=pool_size)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    return create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800,
        isolation_level="READ COMMITTED", connect_args={"connect_timeout": 5, "charset": "utf8mb4"},
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level so "begin" below controls transactions (pysqlite quirk).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    # Writers take the lock at BEGIN: avoids "database is locked" on a lock upgrade under concurrency.
    # Readers run in autocommit (each statement sees committed data, WAL never blocks them).
    if not connection.get_execution_options().get(READONLY_OPTION, False):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


READONLY_OPTION = "pixelcheck_readonly"


def make_session_factory(engine: Engine, *, readonly: bool = False) -> sessionmaker[Session]:
    """Sessions for writing, or (readonly=True) for reading only: autocommit, so a read costs no BEGIN/COMMIT
    round trips and never waits for SQLite's write lock."""
    bind = engine.execution_options(isolation_level="AUTOCOMMIT", **{READONLY_OPTION: True}) if readonly else engine
    return sessionmaker(bind, expire_on_commit=False)


@contextmanager
def read_snapshot(read_sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session (from a readonly factory) whose reads all see one consistent snapshot of the database.

    Readonly sessions run in autocommit, so each statement sees whatever was committed just before it; a
    walk over many statements (the audit chain: its head, then its events page by page) needs them all to
    see the same moment. SQLite: a deferred read transaction (in WAL mode it never blocks writers).
    MySQL/MariaDB: a REPEATABLE READ, read-only transaction with a consistent snapshot taken at its start.
    Raises Unavailable when the database cannot be reached.
    """
    with unit_of_work(read_sessions) as session:
        connection = session.connection()
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN DEFERRED")
        else:
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            connection.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        try:
            yield session
        finally:
            connection.exec_driver_sql("ROLLBACK")  # nothing was written; ends the snapshot


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one transaction: commits on success, rolls back on error.

    Raises Unavailable when the database cannot be reached.
    """
    try:
        with factory.begin() as session:
            yield session
    except _CONNECTION_FAILURES as exc:
        if database_unreachable(exc):
            raise Unavailable("The database is unreachable; try again shortly",
                              reason="DATABASE_UNAVAILABLE", retry_after_seconds=2) from exc
        raise


# The drivers' own (PEP 249) errors for a connection that failed. SQLAlchemy wraps what a statement meets in
# DBAPIError, but not what returning a connection to its pool meets: a readonly session's connection has its
# isolation level reset at check-in, a round trip that raises the driver's error when the server went away
# after the last statement.
DRIVER_CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    pymysql.err.OperationalError, pymysql.err.InterfaceError, sqlite3.OperationalError)
_CONNECTION_FAILURES: tuple[type[Exception], ...] = (OperationalError, *DRIVER_CONNECTION_ERRORS)
_UNREACHABLE_MARKERS = ("can't connect", "lost connection", "gone away", "connection refused", "unable to open",
                        "server has gone", "timed out", "broken pipe", "connection reset")


def is_connection_error(exc: DBAPIError) -> bool:
    """True for errors that mean the database is not reachable (not a bad query)."""
    if exc.connection_invalidated:
        return True
    text = str(exc.orig).lower()
    return any(m in text for m in _UNREACHABLE_MARKERS)


def database_unreachable(exc: BaseException) -> bool:
    """True when exc means the database is not reachable: a DBAPIError that is_connection_error, or a
    driver's own connection error (DRIVER_CONNECTION_ERRORS) that says so. A bad query is not."""
    if isinstance(exc, DBAPIError):
        return is_connection_error(exc)
    if isinstance(exc, pymysql.err.InterfaceError):
        return True  # pymysql raises it only for a connection that is closed or broken
    return isinstance(exc, DRIVER_CONNECTION_ERRORS) and any(m in str(exc).lower() for m in _UNREACHABLE_MARKERS)


def upgrade(database_url: str) -> None:
    """Apply every Alembic migration up to head."""
    from alembic import command

    command.upgrade(_alembic_config(database_url), "head")


class DatabaseProblem(Exception):
    """The database cannot be used: a bad URL, unreachable, or a missing or outdated schema.

    The message is one line for an operator: what is wrong and the command or setting that fixes it.
    """


def safe_url(database_url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"


def database_problem(exc: BaseException, database_url: str) -> DatabaseProblem | None:
    """The operator's one-line explanation of exc when it means the URL is bad or the server unreachable."""
    where = safe_url(database_url)
    if isinstance(exc, (ArgumentError, NoSuchModuleError, ModuleNotFoundError)):
        return DatabaseProblem(f"PIXELCHECK_DATABASE_URL={where} is not a usable database URL ({exc}); set it like "
                               "mysql+pymysql://user:password@host/pixelcheck or sqlite:///var/pixelcheck.db")
    if isinstance(exc, DBAPIError):
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
        if is_connection_error(exc) or isinstance(exc, OperationalError):
            return DatabaseProblem(f"cannot reach the database at {where} ({detail}); check "
                                   "PIXELCHECK_DATABASE_URL and that the database server is running")
    return None


@contextmanager
def explained_problems(database_url: str) -> Iterator[None]:
    """Raises DatabaseProblem for a bad URL or an unreachable server met inside the block."""
    try:
        yield
    except DatabaseProblem:
        raise
    except Exception as exc:
        if (problem := database_problem(exc, database_url)) is None:
            raise
        raise problem from exc


def check_schema(database_url: str) -> None:
    """Raises DatabaseProblem unless the database is reachable and migrated to this release's head."""
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(_alembic_config(database_url)).get_heads())
    with explained_problems(database_url):
        revision = current_revision(database_url)
    if revision is None:
        raise DatabaseProblem(f"the database at {safe_url(database_url)} has no PixelCheck schema yet; "
                              "run `pixelcheck db upgrade`")
    if revision not in heads:
        script = ScriptDirectory.from_config(_alembic_config(database_url))
        if any(rev.revision == revision for rev in script.walk_revisions()):
            raise DatabaseProblem(f"the database schema is at revision {revision}, this release needs "
                                  f"{', '.join(sorted(heads))}; run `pixelcheck db upgrade`")
        raise DatabaseProblem(f"the database schema is at revision {revision}, which this release does not "
                              "know (a newer release migrated it); upgrade PixelCheck")


def current_revision(database_url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def _alembic_config(database_url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config
