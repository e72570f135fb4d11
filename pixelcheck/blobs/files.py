"""FileBlobStore: bytes in files under a folder, written to a temporary name and renamed into place on commit."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from pixelcheck.blobs.outcome import on_outcome
from pixelcheck.blobs.reader import BlobReader, file_pieces

COPY_BYTES = 1024 * 1024  # what put_file holds in memory at once


class FileBlobStore:
    """Bytes in files under root (a folder every server and worker shares)."""

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
        on_outcome(session, committed=lambda: os.replace(temp, final),
                   rolled_back=lambda: temp.unlink(missing_ok=True))

    def put_file(self, session: Session, key: str, source: BinaryIO, size: int) -> None:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{final.name}.{secrets.token_hex(6)}.tmp")
        try:
            with open(temp, "wb") as fh:
                for piece in file_pieces(source, size, COPY_BYTES):
                    fh.write(piece)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        on_outcome(session, committed=lambda: os.replace(temp, final),
                   rolled_back=lambda: temp.unlink(missing_ok=True))

    def get(self, session: Session, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def open(self, key: str, chunk_bytes: int) -> BlobReader | None:
        try:
            fh = open(self._path(key), "rb")  # noqa: SIM115 - the reader closes it
        except FileNotFoundError:
            return None
        return BlobReader(_file_chunks(fh, chunk_bytes), fh.close)

    def delete(self, session: Session, key: str) -> None:
        path = self._path(key)
        on_outcome(session, committed=lambda: path.unlink(missing_ok=True))


def _file_chunks(fh: BinaryIO, chunk_bytes: int) -> Iterator[bytes]:
    yield from iter(lambda: fh.read(chunk_bytes), b"")
