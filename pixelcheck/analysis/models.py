"""Analysis rows: one per image, its life cycle and, once done, its verdict and evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pixelcheck.db import Base, JsonDoc, UtcDateTime, new_id, utcnow


class Analysis(Base):
    __tablename__ = "analyses"
    __table_args__ = (
        Index(None, "owner_id", "create_time", "id"),  # ListResults default order
        Index(None, "owner_id", "confidence", "id"),  # ListResults by confidence
        Index(None, "owner_id", "label", "create_time"),  # label filter
        Index(None, "state", "update_time"),  # reconciler: stale QUEUED/RUNNING
        Index(None, "model_version", "state", "finish_time"),  # live model statistics
        Index(None, "finish_time"),  # usage statistics
        Index(None, "region_map_state", "region_map_update_time"),  # reconciler: stale region maps
        Index(None, "owner_id", "external_id"),  # ListResults(external_id=...)
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), unique=True)
    owner_id: Mapped[str] = mapped_column(String(32))  # copied from the image for owner-scoped listing
    filename: Mapped[str] = mapped_column(String(255))  # copied from the image for the filename filter
    external_id: Mapped[str] = mapped_column(String(128), default="", server_default="")  # copied, for its filter
    state: Mapped[str] = mapped_column(String(16), default="QUEUED")  # QUEUED RUNNING SUCCEEDED FAILED
    stage: Mapped[str] = mapped_column(String(16), default="QUEUED")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    label: Mapped[str | None] = mapped_column(String(8), default=None)  # AI | REAL
    confidence: Mapped[float | None] = mapped_column(Float, default=None)
    prob_ai: Mapped[float | None] = mapped_column(Float, default=None)
    confidence_band: Mapped[str | None] = mapped_column(String(8), default=None)
    model_version: Mapped[str] = mapped_column(String(64), default="")
    signals: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    provenance: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    image_facts: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    explanation: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    stage_timings_ms: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    failure_reason: Mapped[str] = mapped_column(Text, default="")
    report_id: Mapped[str] = mapped_column(String(32), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Turns in the fair queue (ingestion.validation.analysis_cost): kept for re-queues and admission's count.
    cost: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    create_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    update_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    start_time: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    finish_time: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    # The region map, made after the verdict: "" (no verdict yet), PENDING, READY, UNAVAILABLE or FAILED.
    region_map_state: Mapped[str] = mapped_column(String(16), default="", server_default="")
    # {"rows", "columns", "boxes": [[l, t, r, b], ...], "probs": [...] (scored so far), "disagreement",
    #  "reason"}
    region_map: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, default=None, nullable=True)
    region_map_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    region_map_update_time: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    # The pixel model's generator-family guess for AI verdicts (verdict.GeneratorFamily fields), else None.
    generator_family: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, default=None, nullable=True)
    # Whether the pixel verdict survives a messaging-app copy and the crops agree (verdict.Stability fields).
    stability: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, default=None, nullable=True)
    # Animations only: the frame-by-frame reading (verdict.Timeline fields, frames and segments as lists).
    timeline: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, default=None, nullable=True)


class FrameRegionMap(Base):
    """The region map of one analysed frame of an animation or clip other than the first (whose map lives on its
    Analysis row). Made only when asked for; its attributes carry the names of Analysis's region-map columns, so
    that region_maps handles both alike. Deleted with the image."""

    __tablename__ = "frame_region_maps"
    __table_args__ = (Index(None, "state", "update_time"),)  # reconciler: stale frame maps

    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    frame_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # DEFERRED, PENDING, RUNNING, READY or FAILED, as Analysis.region_map_state.
    region_map_state: Mapped[str] = mapped_column("state", String(16), default="DEFERRED")
    region_map: Mapped[dict[str, Any] | None] = mapped_column("doc", JsonDoc, default=None, nullable=True)
    region_map_attempts: Mapped[int] = mapped_column("attempts", Integer, default=0)
    region_map_update_time: Mapped[datetime | None] = mapped_column("update_time", UtcDateTime, default=utcnow)
