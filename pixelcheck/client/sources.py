"""UploadSource: the bytes of an upload (a file or bytes in memory), their size and SHA-256."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

READ_SIZE = 1024 * 1024
HEAD_SIZE = 64  # the first bytes kept: enough to tell a video clip (its type is declared, for its byte limit)


@dataclass(frozen=True)
class UploadSource:
    """What to upload. A file is read twice (hash, then send) rather than held in memory."""

    filename: str
    size: int
    sha256: str
    path: Path | None = None
    data: bytes = b""
    head: bytes = b""  # the first HEAD_SIZE bytes

    @classmethod
    def of(cls, source: str | Path | bytes, filename: str | None = None) -> UploadSource:
        """Describe a path or bytes. Raises OSError for an unreadable file, ValueError for bytes
        without a filename."""
        if isinstance(source, bytes | bytearray | memoryview):
            if not filename:
                raise ValueError("uploading bytes needs a filename")
            data = bytes(source)
            return cls(filename, len(data), hashlib.sha256(data).hexdigest(), data=data, head=data[:HEAD_SIZE])
        path = Path(source)
        digest, size, head = hashlib.sha256(), 0, b""
        with path.open("rb") as f:
            while block := f.read(READ_SIZE):
                head = head or block[:HEAD_SIZE]
                digest.update(block)
                size += len(block)
        return cls(filename or path.name, size, digest.hexdigest(), path=path, head=head)

    def chunks(self, size: int) -> Iterator[bytes]:
        """The bytes in pieces of at most `size`."""
        if self.path is None:
            view = memoryview(self.data)
            for start in range(0, len(view), size):
                yield bytes(view[start:start + size])
            return
        with self.path.open("rb") as f:
            while block := f.read(size):
                yield block
