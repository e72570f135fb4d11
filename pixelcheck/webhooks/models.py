"""Webhook rows: the endpoints users register and the deliveries owed to them (the outbox).

A delivery row is written in the same transaction as the outcome it announces, so no event is lost to a
crash or a broker restart between the two; its body is fixed at that moment, so every attempt sends the
same bytes under the same webhook-id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pixelcheck.db import Base, JsonDoc, UtcDateTime, new_id, utcnow


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index(None, "owner_id", "create_time", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str]] = mapped_column(JsonDoc, default=list)  # e.g. ["analysis.succeeded"]
    description: Mapped[str] = mapped_column(String(200), default="")
    # The signing key ("whsec_..."): needed in clear to sign, never returned after creation or rotation.
    secret: Mapped[str] = mapped_column(String(128))
    previous_secret: Mapped[str] = mapped_column(String(128), default="")  # still signed with until ...
    previous_secret_until: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    secret_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(16), default="ENABLED")  # ENABLED | DISABLED
    disabled_reason: Mapped[str] = mapped_column(Text, default="")
    failing_since: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_type", "subject_id"),  # one delivery per event and endpoint
        Index(None, "state", "next_attempt_time"),  # the dispatcher: due deliveries
        Index(None, "endpoint_id", "create_time", "id"),  # ListWebhookDeliveries
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    owner_id: Mapped[str] = mapped_column(String(32))
    event_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)  # the exact JSON sent on every attempt
    state: Mapped[str] = mapped_column(String(16), default="PENDING")  # PENDING | DELIVERED | FAILED
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    attempt_log: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)  # the last 20 attempts
    last_status_code: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(255), default="")
    next_attempt_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)  # an attempt in flight
    first_attempt_time: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)  # the retry window's start
    create_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    delivered_time: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
