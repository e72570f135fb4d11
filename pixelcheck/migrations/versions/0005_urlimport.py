"""URL imports and webhooks: the caller's own id on images and analyses (external_id, filterable), an
imported image's source URL, and the webhook endpoints and deliveries (the outbox).

Revision ID: urlimport
Revises: familystability
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import pixelcheck.db

revision = "urlimport"
down_revision = "familystability"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(mysql.JSON(), "mariadb").with_variant(mysql.JSON(), "mysql")


def upgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=128), server_default="", nullable=False))
        batch_op.add_column(sa.Column("source_url", sa.String(length=2048), server_default="", nullable=False))
        batch_op.create_index(batch_op.f("ix_images_owner_id_external_id"), ["owner_id", "external_id"], unique=False)
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=128), server_default="", nullable=False))
        batch_op.create_index(batch_op.f("ix_analyses_owner_id_external_id"), ["owner_id", "external_id"],
                              unique=False)
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("event_types", JSON, nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("previous_secret", sa.String(length=128), nullable=False),
        sa.Column("previous_secret_until", pixelcheck.db.UtcDateTime(), nullable=True),
        sa.Column("secret_time", pixelcheck.db.UtcDateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=False),
        sa.Column("failing_since", pixelcheck.db.UtcDateTime(), nullable=True),
        sa.Column("create_time", pixelcheck.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_webhook_endpoints_owner_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_endpoints_owner_id_create_time_id"),
                              ["owner_id", "create_time", "id"], unique=False)
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("attempt_log", JSON, nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=255), nullable=False),
        sa.Column("next_attempt_time", pixelcheck.db.UtcDateTime(), nullable=False),
        sa.Column("lease_until", pixelcheck.db.UtcDateTime(), nullable=True),
        sa.Column("first_attempt_time", pixelcheck.db.UtcDateTime(), nullable=True),
        sa.Column("create_time", pixelcheck.db.UtcDateTime(), nullable=False),
        sa.Column("delivered_time", pixelcheck.db.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["endpoint_id"], ["webhook_endpoints.id"],
                                name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("endpoint_id", "event_type", "subject_id",
                            name=op.f("uq_webhook_deliveries_endpoint_id_event_type_subject_id")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_deliveries_state_next_attempt_time"),
                              ["state", "next_attempt_time"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_deliveries_endpoint_id_create_time_id"),
                              ["endpoint_id", "create_time", "id"], unique=False)


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analyses_owner_id_external_id"))
        batch_op.drop_column("external_id")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_images_owner_id_external_id"))
        batch_op.drop_column("source_url")
        batch_op.drop_column("external_id")
