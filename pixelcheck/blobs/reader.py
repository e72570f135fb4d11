"""BlobReader: stored bytes handed out chunk by chunk, so a download never holds a whole object in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import TracebackType


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
