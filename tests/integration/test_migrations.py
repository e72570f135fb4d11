"""Migrations build the whole schema from an empty database, on SQLite and on MariaDB alike."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import inspect, select

from pixelcheck.db import Base, current_revision, make_engine, upgrade
from pixelcheck.iam.models import Role
from pixelcheck.migrations.registry import import_all_models


def test_migrations_build_every_table_from_an_empty_database(fresh_database_url: Callable[[], str]) -> None:
    url = fresh_database_url()
    assert current_revision(url) is None
    upgrade(url)
    import_all_models()
    engine = make_engine(url, pool_size=1)
    try:
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        with engine.connect() as conn:
            assert sorted(conn.scalars(select(Role.name))) == ["ADMIN", "PROFESSIONAL", "SERVICE", "USER"]
    finally:
        engine.dispose()
    assert current_revision(url) is not None


def test_upgrading_twice_changes_nothing(fresh_database_url: Callable[[], str]) -> None:
    url = fresh_database_url()
    upgrade(url)
    first = current_revision(url)
    upgrade(url)
    assert current_revision(url) == first


def test_models_and_migrations_agree(fresh_database_url: Callable[[], str]) -> None:
    # A model change without a migration shows up here as a non-empty autogenerate diff.
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    url = fresh_database_url()
    upgrade(url)
    import_all_models()
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            diff = [d for d in compare_metadata(context, Base.metadata) if d[0] != "remove_table"]
        assert diff == []
    finally:
        engine.dispose()
