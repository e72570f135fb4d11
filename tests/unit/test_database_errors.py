"""Which errors mean "the database is unreachable" (answered UNAVAILABLE with a retry delay) and which are a bad
query (a bug: INTERNAL), for SQLAlchemy's wrapped errors and the drivers' own."""

from __future__ import annotations

import sqlite3

import pymysql
import pytest
from sqlalchemy.exc import OperationalError, ProgrammingError

from pixelcheck.db import database_unreachable


@pytest.mark.parametrize("error", [
    pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"),
    pymysql.err.OperationalError(2006, "MySQL server has gone away"),
    pymysql.err.OperationalError(2003, "Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection refused)"),
    pymysql.err.InterfaceError(0, ""),
    sqlite3.OperationalError("unable to open database file"),
    OperationalError("SELECT 1", {}, pymysql.err.OperationalError(2013, "Lost connection to MySQL server")),
], ids=["lost", "gone-away", "refused", "closed", "sqlite-file-gone", "wrapped-lost"])
def test_a_connection_that_failed_means_the_database_is_unreachable_raw_or_wrapped(error: Exception) -> None:
    assert database_unreachable(error)


@pytest.mark.parametrize("error", [
    pymysql.err.OperationalError(1054, "Unknown column 'x' in 'field list'"),
    pymysql.err.ProgrammingError(1064, "You have an error in your SQL syntax"),
    sqlite3.OperationalError("no such table: images"),
    ProgrammingError("SELECT x", {}, pymysql.err.ProgrammingError(1064, "syntax")),
    ValueError("lost connection"),
], ids=["unknown-column", "syntax", "sqlite-no-table", "wrapped-syntax", "not-a-database-error"])
def test_a_bad_query_or_any_other_error_is_not_an_unreachable_database(error: Exception) -> None:
    assert not database_unreachable(error)
