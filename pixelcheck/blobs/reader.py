"""BlobReader: stored bytes handed out chunk by chunk, so a download never holds a whole object in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import TracebackType
from typing import BinaryIO


class BlobReader:
    """Chunks of one stored object, read on demand. Closing releases what the store holds open."""

    def __init__(self, chunks: Iterator[bytes], close: Callable[[], None] = lambda: None) -> None:
        self._chunks = chunks
        self._close = close
        self._closed = False

    def read_chunk(self) -> bytes:
        """The next non-empty chunk, or b"" at the end."""
        for chunk in self._chunks:
            if chunk:
                return chunk
        return b""

    def read_all(self) -> bytes:
        """Every remaining byte (for callers that need the whole object anyway), then closes."""
        with self:
            return b"".join(iter(self.read_chunk, b""))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def split(data: bytes, chunk_bytes: int) -> Iterator[bytes]:
    """data in pieces of at most chunk_bytes (zero-copy views turned into bytes one at a time)."""
    view = memoryview(data)
    for start in range(0, len(data), chunk_bytes):
        yield bytes(view[start:start + chunk_bytes])


def file_pieces(source: BinaryIO, size: int, piece_bytes: int) -> Iterator[bytes]:
    """source's bytes in pieces of at most piece_bytes, read one at a time (empty pieces never come). Raises
    ValueError when source holds more or fewer than `size` bytes."""
    left = size
    while left > 0:
        piece = source.read(min(piece_bytes, left))
        if not piece:
            raise ValueError(f"the file ended {left} bytes short of the {size} announced")
        left -= len(piece)
        yield piece
    if source.read(1):
        raise ValueError(f"the file holds more than the {size} bytes announced")
