"""ImportImage: fetch an image or a video clip by URL, then accept it exactly as an upload (same rules, dedupe,
replay, audit; a clip up to video_max_bytes, in a temporary file).

The fetch itself (pixelcheck.ingestion.url_fetch) is async; the database steps are blocking and run through
the caller's offloader. A replayed request_id answers from the database without fetching again.
"""

from __future__ import annotations

import posixpath
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx

from pixelcheck.errors import DomainError, InvalidInput
from pixelcheck.iam.principal import Principal
from pixelcheck.ingestion.import_quota import ImportQuota
from pixelcheck.ingestion.receiving import ReceivedUpload
from pixelcheck.ingestion.service import ImageView, Ingestion
from pixelcheck.ingestion.url_fetch import UrlFetcher
from pixelcheck.ingestion.validation import UploadMetadata, clean_filename, identifier_violations

Run = Callable[..., Awaitable[Any]]  # Offloader.run: awaits a blocking call in a thread
_DEFAULT_FILENAME = "image"


@dataclass(frozen=True)
class ImportRequest:
    url: str
    filename: str = ""
    request_id: str = ""
    external_id: str = ""


class UrlImports:
    def __init__(self, *, ingestion: Ingestion, fetcher: UrlFetcher, quota: ImportQuota,
                 admit: Callable[[Principal], None]) -> None:
        self._ingestion = ingestion
        self.fetcher = fetcher
        self._quota = quota
        self._admit = admit  # the uploads' admission control: rate bucket and queue caps

    async def import_image(self, principal: Principal, request: ImportRequest, *, run: Run, run_abandonable: Run,
                           request_id: str = "", peer: str = "") -> tuple[ImageView, bool]:
        """Fetches request.url and accepts the bytes as an upload; returns the image and whether it was a
        duplicate. Raises InvalidInput (bad field, URL or address), FailedPrecondition (what the remote server
        did), TooLarge (ANALYSIS_QUEUE_FULL, UPLOAD_RATE_LIMITED or URL_IMPORT_RATE_LIMITED before anything is fetched;
        image limits after); every refusal leaves an upload.rejected event."""
        shown_url = _redacted(request.url)
        filename = clean_filename(request.filename)

        def rejected(error: DomainError, size: int = 0, sha256: str = "") -> None:
            self._ingestion.record_rejection(principal, error, size, sha256, filename or shown_url[:255],
                                             request_id=request_id, peer=peer, source_url=shown_url)

        try:
            violations = identifier_violations("", filename=filename, request_id=request.request_id,
                                               external_id=request.external_id, filename_required=False)
            if violations:
                raise InvalidInput("The import request is invalid: " + "; ".join(f"{f} {d}" for f, d in violations),
                                   reason="INVALID_IMPORT_REQUEST", violations=violations)
            replay = await run(self._ingestion.replayed, principal.user_id, request.request_id)
            if replay is not None:
                return replay  # type: ignore[no-any-return]
            await run(self._admit, principal)  # it queues an analysis like an upload: same caps, before any fetch
            await run(self._quota.take, principal.user_id)
            fetched = await self.fetcher.fetch(request.url)
        except DomainError as exc:
            await run(rejected, exc)
            raise
        metadata = UploadMetadata(filename=filename or _filename_from(fetched.final_url), size_bytes=fetched.size,
                                  content_type="", sha256=fetched.sha256, request_id=request.request_id,
                                  external_id=request.external_id)
        upload = ReceivedUpload(metadata=metadata, sha256=fetched.sha256, data=fetched.data, spool=fetched.spool)
        # accept removes a clip's temporary file (in its thread, even when this call is cancelled meanwhile)
        return await run_abandonable(self._ingestion.accept, principal, upload,  # type: ignore[no-any-return]
                                     request_id=request_id, peer=peer, source_url=shown_url)


def _filename_from(url: str) -> str:
    """The last segment of the URL's path, or "image"."""
    try:
        path = httpx.URL(url).path
    except httpx.InvalidURL:
        return _DEFAULT_FILENAME
    name = clean_filename(unquote(posixpath.basename(path)))
    return name[:255] or _DEFAULT_FILENAME


def _redacted(url: str) -> str:
    """The URL as kept in the audit trail and on the image: no user name or password, at most 2048 characters."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return url[:200]
    if parsed.userinfo:
        parsed = parsed.copy_with(username=None, password=None)
    return str(parsed)[:2048]
