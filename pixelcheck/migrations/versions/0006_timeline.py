"""Animations: the frame-by-frame reading of an animated GIF, WebP or PNG stored with its verdict.

Revision ID: timeline
Revises: urlimport
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "timeline"
down_revision = "urlimport"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(mysql.JSON(), "mariadb").with_variant(mysql.JSON(), "mysql")


def upgrade() -> None:
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timeline", _json(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.drop_column("timeline")
