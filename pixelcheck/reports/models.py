"""Report rows. The file bytes live behind the blob store under "report/<id>"."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pixelcheck.db import Base, UtcDateTime, new_id, utcnow


class Report(Base):
    __tablename__ = "reports"
    __table_args__ = (Index(None, "owner_id", "create_time", "id"), Index(None, "state", "ready_time"),
                      Index(None, "state", "update_time"))  # the reconciler: reports a lost task left behind

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(8))  # SINGLE | BATCH
    format: Mapped[str] = mapped_column(String(8))  # PDF | CSV
    state: Mapped[str] = mapped_column(String(16), default="REQUESTED")
    title: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(255), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    automatic: Mapped[bool] = mapped_column(default=False)
    failure_reason: Mapped[str] = mapped_column(Text, default="")
    create_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    ready_time: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    update_time: Mapped[datetime | None] = mapped_column(UtcDateTime, default=utcnow)  # REQUESTED, GENERATING
    build_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    images: Mapped[list[ReportImage]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="ReportImage.position"
    )


class ReportImage(Base):
    """An image covered by a report. No foreign key to images: the row outlives a deleted image."""

    __tablename__ = "report_images"
    __table_args__ = (Index(None, "image_id"),)

    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(255), default="")  # kept so a deleted image is still named
