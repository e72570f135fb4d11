"""SqlBlobStore: bytes in their own table, apart from the metadata rows, in the same transaction, split into
parts of at most 1 MiB (a MySQL statement must fit in max_allowed_packet)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

from sqlalchemy import Integer, String, delete, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from pixelcheck.blobs.reader import BlobReader, file_pieces, split
from pixelcheck.db import Base, Blob, UtcDateTime, utcnow

PART_BYTES = 1024 * 1024


class BlobRow(Base):
    """One part of the bytes stored under a key; the parts in order are the whole."""

    __tablename__ = "blobs"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)  # e.g. "image/<id>", "report/<id>"
    part: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(Blob)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SqlBlobStore:
    """Bytes in the `blobs` table. `read_sessions` serves open(), which reads one part per query."""

    def __init__(self, read_sessions: sessionmaker[Session] | None = None) -> None:
        self._read_sessions = read_sessions

    def put(self, session: Session, key: str, data: bytes) -> None:
        now = utcnow()
        parts = split(data, PART_BYTES) if data else iter([b""])
        session.add_all([BlobRow(key=key, part=n, data=part, create_time=now) for n, part in enumerate(parts)])

    def put_file(self, session: Session, key: str, source: BinaryIO, size: int) -> None:
        now = utcnow()
        insert_part = insert(BlobRow)
        # One part in memory at a time: each is sent at once and not kept by the session (no ORM object).
        for n, part in enumerate(file_pieces(source, size, PART_BYTES) if size else iter([b""])):
            session.execute(insert_part, [{"key": key, "part": n, "data": part, "create_time": now}])

    def get(self, session: Session, key: str) -> bytes | None:
        parts = session.scalars(select(BlobRow.data).where(BlobRow.key == key).order_by(BlobRow.part)).all()
        return b"".join(parts) if parts else None

    def open(self, key: str, chunk_bytes: int) -> BlobReader | None:
        if self._read_sessions is None:
            raise RuntimeError("SqlBlobStore.open needs the read_sessions it was built with")
        with self._read_sessions() as session:
            parts = list(session.scalars(select(BlobRow.part).where(BlobRow.key == key).order_by(BlobRow.part)))
        return BlobReader(self._chunks(key, parts, chunk_bytes)) if parts else None

    def _chunks(self, key: str, parts: list[int], chunk_bytes: int) -> Iterator[bytes]:
        assert self._read_sessions is not None
        for part in parts:  # one part (at most 1 MiB) in memory at a time, no connection held in between
            with self._read_sessions() as session:
                data = session.scalar(select(BlobRow.data).where(BlobRow.key == key, BlobRow.part == part))
            yield from split(data or b"", chunk_bytes)

    def delete(self, session: Session, key: str) -> None:
        session.execute(delete(BlobRow).where(BlobRow.key == key))
