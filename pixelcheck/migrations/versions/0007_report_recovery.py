"""Reports a lost task left behind: when a report last changed, and how many builds it took.

Revision ID: reportrecovery
Revises: timeline
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pixelcheck.db import UtcDateTime

revision = "reportrecovery"
down_revision = "timeline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("update_time", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("build_attempts", sa.Integer(), nullable=False, server_default="0"))
    op.execute("UPDATE reports SET update_time = create_time")
    op.create_index(op.f("ix_reports_state_update_time"), "reports", ["state", "update_time"])


def downgrade() -> None:
    op.drop_index(op.f("ix_reports_state_update_time"), table_name="reports")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_column("build_attempts")
        batch_op.drop_column("update_time")
