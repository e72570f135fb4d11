"""Region maps: the per-region scores an analysis gains after its verdict, and their life cycle.

Revision ID: regionmap
Revises: tokens
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import pixelcheck.db

revision = "regionmap"
down_revision = "tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("region_map_state", sa.String(length=16), server_default="", nullable=False))
        batch_op.add_column(
            sa.Column(
                "region_map",
                sa.JSON().with_variant(mysql.JSON(), "mariadb").with_variant(mysql.JSON(), "mysql"),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("region_map_attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("region_map_update_time", pixelcheck.db.UtcDateTime(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_analyses_region_map_state_region_map_update_time"),
            ["region_map_state", "region_map_update_time"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analyses_region_map_state_region_map_update_time"))
        batch_op.drop_column("region_map_update_time")
        batch_op.drop_column("region_map_attempts")
        batch_op.drop_column("region_map")
        batch_op.drop_column("region_map_state")
