"""Revocable credentials: per-user token version and deactivation, recorded service tokens.

Revision ID: tokens
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pixelcheck.db

revision = "tokens"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_version", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("credentials_change_time", pixelcheck.db.UtcDateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_users_credentials_change_time"), ["credentials_change_time"],
                              unique=False)
    op.create_table(
        "service_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("principal_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("issued_by", sa.String(length=128), nullable=False),
        sa.Column("create_time", pixelcheck.db.UtcDateTime(), nullable=False),
        sa.Column("expire_time", pixelcheck.db.UtcDateTime(), nullable=False),
        sa.Column("last_used_time", pixelcheck.db.UtcDateTime(), nullable=True),
        sa.Column("revoke_time", pixelcheck.db.UtcDateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["principal_id"], ["users.id"], name=op.f("fk_service_tokens_principal_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_tokens")),
    )
    with op.batch_alter_table("service_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_tokens_create_time_id"), ["create_time", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_service_tokens_principal_id"), ["principal_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_service_tokens_revoke_time"), ["revoke_time"], unique=False)


def downgrade() -> None:
    op.drop_table("service_tokens")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_credentials_change_time"))
        batch_op.drop_column("credentials_change_time")
        batch_op.drop_column("disabled")
        batch_op.drop_column("token_version")
