"""Region maps of the frames of an animation or clip other than the first, each made when somebody asks for it.

Revision ID: frameregionmaps
Revises: reportrecovery
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import pixelcheck.db

revision = "frameregionmaps"
down_revision = "reportrecovery"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "frame_region_maps",
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("frame_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("doc", sa.JSON().with_variant(mysql.JSON(), "mariadb").with_variant(mysql.JSON(), "mysql"),
                  nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("update_time", pixelcheck.db.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name=op.f("fk_frame_region_maps_image_id_images"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("image_id", "frame_index", name=op.f("pk_frame_region_maps")),
    )
    with op.batch_alter_table("frame_region_maps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_frame_region_maps_state_update_time"), ["state", "update_time"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("frame_region_maps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_frame_region_maps_state_update_time"))
    op.drop_table("frame_region_maps")
