"""Audit rows: an append-only hash chain of events, its head, and the checkpoint left by pruning."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pixelcheck.db import Base, JsonDoc, UtcDateTime, utcnow

BigId = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements only INTEGER keys


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index(None, "occurred_time", "id"),
        Index(None, "actor_id", "id"),
        Index(None, "action", "id"),
        Index(None, "method", "id"),
        Index(None, "status_code", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)  # chain position
    actor_id: Mapped[str] = mapped_column(String(32), default="")
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255), default="")
    method: Mapped[str] = mapped_column(String(128), default="")
    status_code: Mapped[str] = mapped_column(String(32), default="")
    peer: Mapped[str] = mapped_column(String(128), default="")
    request_id: Mapped[str] = mapped_column(String(128), default="")
    duration_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    occurred_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """One row (id=1): the last event's id and hash. Writers lock it, so the chain stays linear."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """What pruning removed: the chain resumes from the last pruned event's hash."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    last_pruned_event_id: Mapped[int] = mapped_column(BigInteger)
    last_pruned_hash: Mapped[str] = mapped_column(String(64))
    pruned_count: Mapped[int] = mapped_column(BigInteger)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
