"""SpoolFile: a video clip's bytes in a temporary file while they are received (or fetched), checked and stored.

A clip may be hundreds of megabytes: it is never held whole in memory. Still images stay in memory as before.
Whoever holds a SpoolFile removes it with discard(), whatever happens (refused, cancelled, failed or stored).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

PREFIX, SUFFIX = "pixelcheck-", ".clip"


class SpoolFile:
    """A temporary file in `folder` (the system's temporary folder when empty), written in order, then read."""

    def __init__(self, folder: str = "") -> None:
        fd, self.path = tempfile.mkstemp(prefix=PREFIX, suffix=SUFFIX, dir=folder or None)
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


class SpoolFolderError(Exception):
    """The spool folder cannot be made or written."""


def prepare_spool(folder: str, *, stale_after_seconds: float) -> int:
    """Makes the spool folder (a server or worker whose PIXELCHECK_SPOOL_DIR names a folder that is missing or
    read-only would fail every clip) and removes the clip files a killed process left there, those untouched for
    stale_after_seconds (no live upload, import or analysis keeps one that long). Returns how many it removed.
    Raises SpoolFolderError naming the folder and why."""
    where = Path(folder or tempfile.gettempdir())
    try:
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=where):
            pass
    except OSError as error:
        raise SpoolFolderError(f"the spool folder {where} (PIXELCHECK_SPOOL_DIR) cannot be written: {error}") from error
    cutoff, removed = time.time() - stale_after_seconds, 0
    for path in where.glob(f"{PREFIX}*{SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):  # another process removed it first
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed
