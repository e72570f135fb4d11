"""An uploaded file read back for decoding: a still's bytes in memory, a video clip as a local temporary file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.blobs import BlobStore
from pixelcheck.blobs.local_copy import local_copy
from pixelcheck.db import unit_of_work
from pixelcheck.ingestion.models import Image
from pixelcheck.ingestion.service import image_key
from pixelcheck.video_formats import VIDEO_TYPES


@contextlib.contextmanager
def stored_source(blobs: BlobStore, read_sessions: sessionmaker[Session], image_id: str,
                  spool_dir: str = "") -> Iterator[bytes | str | None]:
    """The image's bytes, or for a video clip the path of a copy in a temporary file in spool_dir (copied chunk
    by chunk, never whole in memory, and removed on leaving the block); None when the image or its bytes are
    gone. Raises Unavailable when the database or the blob store cannot be reached."""
    # autocommit: no BEGIN/COMMIT round trips for a read
    with unit_of_work(read_sessions) as session:
        content_type = session.scalar(select(Image.content_type).where(Image.id == image_id))
        data = None if content_type in VIDEO_TYPES else blobs.get(session, image_key(image_id))
    if content_type not in VIDEO_TYPES:
        yield data
        return
    with local_copy(blobs, image_key(image_id), spool_dir) as path:
        yield path
