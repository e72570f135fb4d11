"""Receives a client-streamed upload: metadata first and once, chunks up to the limits, hashed as they come.

A still image is appended to one buffer in memory (bounded by max_bytes, never copied per chunk). Once the
first bytes are a video clip, the bytes go to a temporary file instead (SpoolFile), so a clip of hundreds of
megabytes costs about one chunk of memory. The stream is abandoned the moment a limit is crossed (the rest is
not read), and the temporary file is removed on every way out but success, where the upload's holder removes
it (Ingestion.accept).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import BinaryIO

from pixelcheck.errors import DomainError, InvalidInput, TooLarge
from pixelcheck.image_formats import SNIFF_BYTES
from pixelcheck.ingestion.spool import SpoolFile
from pixelcheck.ingestion.validation import UploadLimits, UploadMetadata, validate_metadata
from pixelcheck.video_formats import sniff_video_type


@dataclass(frozen=True)
class ReceivedUpload:
    """An upload's bytes: in memory (`data`, a still image) or in a temporary file (`spool`, a video clip)."""

    metadata: UploadMetadata
    sha256: str
    data: bytes = b""
    spool: SpoolFile | None = None

    @property
    def size(self) -> int:
        return self.spool.size if self.spool is not None else len(self.data)

    @property
    def source(self) -> bytes | str:
        """The bytes, or the path of the temporary file holding them (what the video functions take)."""
        return self.spool.path if self.spool is not None else self.data

    def open(self) -> BinaryIO:
        """The bytes from the start, as a file to read. Close it when done."""
        return self.spool.open() if self.spool is not None else io.BytesIO(self.data)

    def discard(self) -> None:
        """Remove the temporary file, if any (idempotent). Every holder of a received upload calls it."""
        if self.spool is not None:
            self.spool.discard()


@dataclass
class _Progress:
    size: int = 0
    sha256: str = ""
    filename: str = ""
    spool_dir: str = ""
    spool: SpoolFile | None = None
    failed: bool = True  # until the upload is handed over: the spool file is removed on the way out


Message = tuple[str, UploadMetadata | bytes | None]  # ("metadata", UploadMetadata) or ("chunk", bytes)
RejectHook = Callable[[DomainError, int, str, str], None]  # error, bytes received, sha256 so far, filename


async def receive_upload(messages: AsyncIterator[Message], limits: UploadLimits, on_reject: RejectHook, *,
                         spool_dir: str = "") -> ReceivedUpload:
    """Reads the whole upload stream and checks every stream rule; a video clip's bytes go to a temporary file in
    spool_dir (the system's temporary folder when empty), which the caller must discard() once done with it.

    Raises InvalidInput or TooLarge (after calling on_reject, so a rejection leaves an audit event); whatever is
    raised (a cancelled call too), no temporary file is left behind.
    """
    progress = _Progress(spool_dir=spool_dir)
    try:
        return await _receive(messages, limits, progress)
    except DomainError as exc:
        on_reject(exc, progress.size, progress.sha256, progress.filename)
        raise
    finally:
        if progress.spool is not None and progress.failed:
            progress.spool.discard()


async def _receive(messages: AsyncIterator[Message], limits: UploadLimits, progress: _Progress) -> ReceivedUpload:
    metadata: UploadMetadata | None = None
    buffer = bytearray()  # a still image's bytes; a clip's go to progress.spool from its first chunk on
    head = b""
    digest = hashlib.sha256()
    async for kind, payload in messages:
        if kind == "metadata":
            if metadata is not None:
                raise InvalidInput("metadata must be sent once, as the first message", reason="METADATA_REPEATED")
            assert isinstance(payload, UploadMetadata)
            metadata = validate_metadata(payload, limits)
            progress.filename = metadata.filename
            continue
        if kind != "chunk":
            raise InvalidInput("Each message must carry metadata or a chunk", reason="EMPTY_MESSAGE")
        if metadata is None:
            raise InvalidInput("The first message must carry the metadata", reason="METADATA_MISSING")
        assert isinstance(payload, bytes)
        if len(payload) > limits.max_chunk_bytes:
            raise InvalidInput(f"A chunk may carry at most {limits.max_chunk_bytes} bytes; got {len(payload)}",
                               reason="CHUNK_TOO_LARGE")
        if len(head) < SNIFF_BYTES:
            head += payload[:SNIFF_BYTES - len(head)]
        limit = limits.byte_limit(metadata.content_type, head)
        if progress.size + len(payload) > limit or metadata.size_bytes > limit:
            progress.size += len(payload)
            video = limit != limits.max_bytes
            raise TooLarge(f"The upload crossed the limit of {limit} bytes"
                           + (" for video clips (video_max_bytes)" if video else ""),
                           reason="VIDEO_TOO_LARGE" if video else "UPLOAD_TOO_LARGE",
                           metadata={"limit_bytes": str(limit)})
        if progress.size + len(payload) > metadata.size_bytes:
            progress.size += len(payload)
            raise InvalidInput(f"More bytes arrived than the declared size_bytes={metadata.size_bytes}",
                               reason="SIZE_MISMATCH")
        if progress.spool is None and len(head) >= SNIFF_BYTES and sniff_video_type(head):
            progress.spool = SpoolFile(progress.spool_dir)
            progress.spool.write(buffer)
            buffer = bytearray()
        if progress.spool is not None:
            progress.spool.write(payload)  # page cache: cheap enough to stay on the event loop
        else:
            buffer += payload
        digest.update(payload)
        progress.size += len(payload)
    progress.sha256 = digest.hexdigest()
    if metadata is None:
        raise InvalidInput("The upload carried no metadata and no bytes", reason="METADATA_MISSING")
    if progress.size != metadata.size_bytes:
        raise InvalidInput(f"Received {progress.size} bytes but size_bytes declared {metadata.size_bytes}",
                           reason="SIZE_MISMATCH")
    if metadata.sha256 and metadata.sha256 != progress.sha256:
        raise InvalidInput("The bytes do not match the declared sha256", reason="CHECKSUM_MISMATCH",
                           violations=[("metadata.sha256", "does not match the received bytes")])
    if progress.spool is not None:
        progress.spool.finish()
        upload = ReceivedUpload(metadata=metadata, sha256=progress.sha256, spool=progress.spool)
    else:
        upload = ReceivedUpload(metadata=metadata, sha256=progress.sha256, data=bytes(buffer))
    progress.failed = False
    return upload
