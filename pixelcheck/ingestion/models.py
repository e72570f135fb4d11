"""Image rows. The bytes live behind the blob store (pixelcheck.blobs), never in this table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pixelcheck.db import Base, UtcDateTime, new_id, utcnow


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("owner_id", "sha256"),  # per-user dedupe, race-safe
        Index(None, "owner_id", "create_time", "id"),  # ListImages, newest first
        Index(None, "create_time"),  # retention
        Index(None, "owner_id", "external_id"),  # ListImages(external_id=...)
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    create_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    external_id: Mapped[str] = mapped_column(String(128), default="", server_default="")  # the caller's own id
    source_url: Mapped[str] = mapped_column(String(2048), default="", server_default="")  # ImportImage only


class UploadRequest(Base):
    """Remembers the response to an upload's request_id so a replay returns the first response."""

    __tablename__ = "upload_requests"
    __table_args__ = (UniqueConstraint("owner_id", "request_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    request_id: Mapped[str] = mapped_column(String(128))
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    duplicate: Mapped[bool] = mapped_column(default=False)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
