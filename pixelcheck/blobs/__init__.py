"""Where bytes live: a small blob-store seam, shared by images ("image/<id>") and reports ("report/<id>").

Three stores, chosen by PIXELCHECK_BLOB_STORE:
- `SqlBlobStore` ("database", the default): a table of its own, in the same transaction as the rows.
- `FileBlobStore` ("filesystem"): files in a folder, renamed into place when the transaction commits.
- `S3BlobStore` ("s3"): objects in an S3-compatible bucket, written before the row that points at them
  commits and removed once the row's deletion commits; a crash in between leaves at most an orphan
  object, which `pixelcheck.audit.retention.sweep_orphan_blobs` (scheduled by beat) removes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, BinaryIO, Protocol, runtime_checkable

from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.blobs.database import PART_BYTES, BlobRow, SqlBlobStore
from pixelcheck.blobs.files import FileBlobStore
from pixelcheck.blobs.reader import BlobReader

if TYPE_CHECKING:
    from pixelcheck.settings import Settings

__all__ = ["PART_BYTES", "BlobReader", "BlobRow", "BlobStore", "FileBlobStore", "SqlBlobStore",
           "SweepableBlobStore", "make_blob_store"]


class BlobStore(Protocol):
    def put(self, session: Session, key: str, data: bytes) -> None:
        """Store data under key for the session's transaction: readable once it commits, gone when it rolls
        back."""

    def put_file(self, session: Session, key: str, source: BinaryIO, size: int) -> None:
        """As put, with the `size` bytes read from source (a file at its start) a piece at a time: a video
        clip of hundreds of megabytes is never held whole in memory. Raises ValueError when source does not
        hold exactly `size` bytes (nothing is kept then)."""

    def get(self, session: Session, key: str) -> bytes | None:
        """The bytes under key, or None."""

    def open(self, key: str, chunk_bytes: int) -> BlobReader | None:
        """The committed bytes under key as chunks of at most chunk_bytes, read one at a time; None when
        there are none. Close the reader when done."""

    def delete(self, session: Session, key: str) -> None:
        """Remove key when the session's transaction commits (a missing key is fine)."""


@runtime_checkable
class SweepableBlobStore(Protocol):
    """A store whose writes are not part of the database transaction, so a crash can leave orphans."""

    def keys_written_before(self, cutoff: datetime) -> Iterator[list[str]]:
        """Every stored key last written before cutoff, in batches."""

    def remove_now(self, keys: list[str]) -> None:
        """Remove these keys at once, outside any transaction."""


def make_blob_store(settings: Settings, read_sessions: sessionmaker[Session]) -> BlobStore:
    """The store named by settings.blob_store: "database", "filesystem" or "s3"."""
    if settings.blob_store == "filesystem":
        return FileBlobStore(settings.resolved_blob_dir)
    if settings.blob_store == "s3":
        from pixelcheck.blobs.s3 import S3BlobStore, make_s3_client

        return S3BlobStore(make_s3_client(settings), bucket=settings.s3_bucket, prefix=settings.s3_prefix)
    return SqlBlobStore(read_sessions)
