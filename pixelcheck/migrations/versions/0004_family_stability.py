"""Generator family and stability: two findings of the pixel model stored with each verdict.

Revision ID: familystability
Revises: regionmap
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "familystability"
down_revision = "regionmap"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(mysql.JSON(), "mariadb").with_variant(mysql.JSON(), "mysql")


def upgrade() -> None:
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("generator_family", _json(), nullable=True))
        batch_op.add_column(sa.Column("stability", _json(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.drop_column("stability")
        batch_op.drop_column("generator_family")
