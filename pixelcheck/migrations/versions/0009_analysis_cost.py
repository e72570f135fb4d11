"""What an analysis costs in the fair queue (turns: 1 for a picture; frames read, and for a clip decoding all its
frames), kept with the analysis so that a re-queued one keeps it and admission can count it from the database.

Revision ID: analysiscost
Revises: frameregionmaps
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "analysiscost"
down_revision = "frameregionmaps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cost", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.drop_column("cost")
