"""Alembic environment: runs migrations on the URL that pixelcheck.db.upgrade passes in."""

from __future__ import annotations

from alembic import context

from pixelcheck.db import Base, make_engine
from pixelcheck.migrations.registry import import_all_models

import_all_models()
config = context.config


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "", pool_size=1)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
