"""Where bytes live: a small blob-store seam, shared by images and reports.

`SqlBlobStore` (default) keeps bytes in their own table, apart from the metadata rows, in the same
transaction, split into parts of at most 1 MiB (a MySQL statement must fit in max_allowed_packet).
`FileBlobStore` keeps them in a directory; files appear only when the transaction commits.
An S3-compatible store would implement the same four methods.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import Integer, String, delete, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from pixelcheck.db import Base, Blob, UtcDateTime, utcnow

PART_BYTES = 1024 * 1024


class BlobRow(Base):
    """One part of the bytes stored under a key; the parts in order are the whole."""

    __tablename__ = "blobs"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)  # e.g. "image/<id>", "report/<id>"
    part: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(Blob)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class BlobStore(Protocol):
    def put(self, session: Session, key: str, data: bytes) -> None:
        """Store data under key as part of the session's transaction."""

    def get(self, session: Session, key: str) -> bytes | None:
        """The bytes under key, or None."""

    def delete(self, session: Session, key: str) -> None:
        """Remove key when the session's transaction commits (a missing key is fine)."""


class SqlBlobStore:
    """Bytes in the `blobs` table."""

    def put(self, session: Session, key: str, data: bytes) -> None:
        view = memoryview(data)
        now = utcnow()
        session.add_all([BlobRow(key=key, part=n, data=bytes(view[start:start + PART_BYTES]), create_time=now)
                         for n, start in enumerate(range(0, max(len(data), 1), PART_BYTES))])

    def get(self, session: Session, key: str) -> bytes | None:
        parts = session.scalars(select(BlobRow.data).where(BlobRow.key == key).order_by(BlobRow.part)).all()
        return b"".join(parts) if parts else None

    def delete(self, session: Session, key: str) -> None:
        session.execute(delete(BlobRow).where(BlobRow.key == key))


class FileBlobStore:
    """Bytes in files under a directory; written to a temporary name and renamed into place on commit."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not key or ".." in key or key.startswith("/"):
            raise ValueError(f"bad blob key {key!r}")
        return self.root / key

    def put(self, session: Session, key: str, data: bytes) -> None:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{final.name}.{secrets.token_hex(6)}.tmp")
        with open(temp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        event.listen(session, "after_commit", lambda _s: os.replace(temp, final), once=True)
        event.listen(session, "after_rollback", lambda _s: temp.unlink(missing_ok=True), once=True)

    def get(self, session: Session, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, session: Session, key: str) -> None:
        path = self._path(key)
        event.listen(session, "after_commit", lambda _s: path.unlink(missing_ok=True), once=True)


def make_blob_store(kind: str, directory: Path) -> BlobStore:
    """The store named by settings: "database" or "filesystem"."""
    return FileBlobStore(directory) if kind == "filesystem" else SqlBlobStore()
