"""Receives a client-streamed upload: metadata first and once, chunks up to the limits, hashed as they come.

Memory is bounded by the size limit (a video clip's, when the metadata declares one and the first bytes are
one): chunks are appended to one buffer, never copied per chunk, and the stream is abandoned the moment a
limit is crossed (the rest is not read).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from pixelcheck.errors import DomainError, InvalidInput, TooLarge
from pixelcheck.image_formats import SNIFF_BYTES
from pixelcheck.ingestion.validation import UploadLimits, UploadMetadata, validate_metadata


@dataclass(frozen=True)
class ReceivedUpload:
    metadata: UploadMetadata
    data: bytes
    sha256: str


@dataclass
class _Progress:
    size: int = 0
    sha256: str = ""
    filename: str = ""


Message = tuple[str, UploadMetadata | bytes | None]  # ("metadata", UploadMetadata) or ("chunk", bytes)
RejectHook = Callable[[DomainError, int, str, str], None]  # error, bytes received, sha256 so far, filename


async def receive_upload(messages: AsyncIterator[Message], limits: UploadLimits,
                         on_reject: RejectHook) -> ReceivedUpload:
    """Reads the whole upload stream and checks every stream rule.

    Raises InvalidInput or TooLarge (after calling on_reject, so a rejection leaves an audit event).
    """
    progress = _Progress()
    try:
        return await _receive(messages, limits, progress)
    except DomainError as exc:
        on_reject(exc, progress.size, progress.sha256, progress.filename)
        raise


async def _receive(messages: AsyncIterator[Message], limits: UploadLimits, progress: _Progress) -> ReceivedUpload:
    metadata: UploadMetadata | None = None
    buffer = bytearray()
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
        head = bytes(buffer[:SNIFF_BYTES]) if len(buffer) >= SNIFF_BYTES else bytes(buffer) + payload[:SNIFF_BYTES]
        limit = limits.byte_limit(metadata.content_type, head)
        if len(buffer) + len(payload) > limit or metadata.size_bytes > limit:
            progress.size = len(buffer) + len(payload)
            video = limit != limits.max_bytes
            raise TooLarge(f"The upload crossed the limit of {limit} bytes"
                           + (" for video clips (video_max_bytes)" if video else ""),
                           reason="VIDEO_TOO_LARGE" if video else "UPLOAD_TOO_LARGE",
                           metadata={"limit_bytes": str(limit)})
        if len(buffer) + len(payload) > metadata.size_bytes:
            progress.size = len(buffer) + len(payload)
            raise InvalidInput(f"More bytes arrived than the declared size_bytes={metadata.size_bytes}",
                               reason="SIZE_MISMATCH")
        buffer += payload
        digest.update(payload)
        progress.size = len(buffer)
    progress.sha256 = digest.hexdigest()
    if metadata is None:
        raise InvalidInput("The upload carried no metadata and no bytes", reason="METADATA_MISSING")
    if len(buffer) != metadata.size_bytes:
        raise InvalidInput(f"Received {len(buffer)} bytes but size_bytes declared {metadata.size_bytes}",
                           reason="SIZE_MISMATCH")
    if metadata.sha256 and metadata.sha256 != progress.sha256:
        raise InvalidInput("The bytes do not match the declared sha256", reason="CHECKSUM_MISMATCH",
                           violations=[("metadata.sha256", "does not match the received bytes")])
    return ReceivedUpload(metadata=metadata, data=bytes(buffer), sha256=progress.sha256)
