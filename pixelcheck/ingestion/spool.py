"""SpoolFile: a video clip's bytes in a temporary file while they are received (or fetched), checked and stored.

A clip may be hundreds of megabytes: it is never held whole in memory. Still images stay in memory as before.
Whoever holds a SpoolFile removes it with discard(), whatever happens (refused, cancelled, failed or stored).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import BinaryIO


class SpoolFile:
    """A temporary file in `folder` (the system's temporary folder when empty), written in order, then read."""

    def __init__(self, folder: str = "") -> None:
        fd, self.path = tempfile.mkstemp(prefix="pixelcheck-", suffix=".clip", dir=folder or None)
        self._writer: BinaryIO | None = os.fdopen(fd, "wb")
        self.size = 0

    def write(self, chunk: bytes | bytearray) -> None:
        """Append chunk. Raises ValueError once finished or discarded."""
        if self._writer is None:
            raise ValueError("the spool file is no longer written")
        self._writer.write(chunk)
        self.size += len(chunk)

    def finish(self) -> None:
        """Close the writer: the file holds every byte from now on (idempotent)."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    def open(self) -> BinaryIO:
        """The bytes from the start, for reading (finishes the writing first). Close it when done."""
        self.finish()
        return open(self.path, "rb")  # noqa: SIM115 - the caller closes it

    def discard(self) -> None:
        """Remove the file (idempotent; an open reader keeps its bytes until it is closed)."""
        try:
            self.finish()
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
