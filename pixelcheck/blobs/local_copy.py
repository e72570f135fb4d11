"""A stored object copied to a local temporary file, chunk by chunk: how a worker hands a video clip to the
decoder (PyAV opens a path) without holding the clip whole in memory."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pixelcheck.blobs.database import PART_BYTES

if TYPE_CHECKING:
    from pixelcheck.blobs import BlobStore


@contextlib.contextmanager
def local_copy(blobs: BlobStore, key: str, folder: str = "", chunk_bytes: int = PART_BYTES) -> Iterator[str | None]:
    """The path of a temporary file in folder (the system's temporary folder when empty) holding the bytes
    under key, or None when there are none. The file is removed on leaving the block, however it is left.
    Raises what the store raises (Unavailable when it cannot be reached)."""
    reader = blobs.open(key, chunk_bytes)
    if reader is None:
        yield None
        return
    with contextlib.ExitStack() as cleanup:
        cleanup.enter_context(reader)
        fd, path = tempfile.mkstemp(prefix="pixelcheck-", suffix=".clip", dir=folder or None)
        cleanup.callback(_remove, path)  # on leaving the block, however it is left
        with os.fdopen(fd, "wb") as out:
            for chunk in iter(reader.read_chunk, b""):  # one chunk in memory at a time
                out.write(chunk)
        reader.close()
        yield path


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
