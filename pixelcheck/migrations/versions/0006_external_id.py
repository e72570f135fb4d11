"""The caller's own id on images and analyses (external_id, filterable), and an imported image's source URL.

Revision ID: externalid
Revises: regionmap
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "externalid"
down_revision = "regionmap"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=128), server_default="", nullable=False))
        batch_op.add_column(sa.Column("source_url", sa.String(length=2048), server_default="", nullable=False))
        batch_op.create_index(batch_op.f("ix_images_owner_id_external_id"), ["owner_id", "external_id"], unique=False)
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=128), server_default="", nullable=False))
        batch_op.create_index(batch_op.f("ix_analyses_owner_id_external_id"), ["owner_id", "external_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analyses_owner_id_external_id"))
        batch_op.drop_column("external_id")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_images_owner_id_external_id"))
        batch_op.drop_column("source_url")
        batch_op.drop_column("external_id")
