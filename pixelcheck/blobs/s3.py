"""S3BlobStore: bytes as objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, moto ...), through boto3.

An object is written before the row that points at it commits (and removed again at once when that
transaction rolls back); it is removed after the commit that deletes its row. A crash between the write and
the commit leaves an object no row references: the beat sweep (`keys_written_before` / `remove_now`) finds
and removes such orphans once they are older than a grace period. A video clip (put_file) goes up as a
multipart upload, one part (8 MiB) in memory at a time, aborted when a part fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from sqlalchemy.orm import Session

from pixelcheck.blobs.outcome import on_outcome
from pixelcheck.blobs.reader import BlobReader, file_pieces
from pixelcheck.errors import Unavailable

if TYPE_CHECKING:
    from pixelcheck.settings import Settings

log = logging.getLogger("pixelcheck.blobs")
T = TypeVar("T")
DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes
PART_BYTES = 8 * 1024 * 1024  # a part of a multipart upload: what put_file holds in memory at once
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's smallest part (but the last)
_MISSING = ("NoSuchKey", "404", "NotFound")
_TRANSIENT = ("SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
              "InternalError", "ServiceUnavailable", "503", "500")


def make_s3_client(settings: Settings) -> Any:
    """A boto3 S3 client from the PIXELCHECK_S3_* settings. Without an access key it uses boto3's default
    credential chain (AWS_* variables, shared config and credentials files, container or instance roles)."""
    import boto3
    from botocore.config import Config

    credentials: dict[str, str] = {}
    if settings.s3_access_key_id:
        credentials = {"aws_access_key_id": settings.s3_access_key_id,
                       "aws_secret_access_key": settings.s3_secret_access_key}
        if settings.s3_session_token:
            credentials["aws_session_token"] = settings.s3_session_token
    config = Config(
        s3={"addressing_style": settings.s3_addressing_style},
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5, read_timeout=30,
        max_pool_connections=max(10, settings.grpc_max_workers),  # one per blocking thread of a server
    )
    session = boto3.session.Session()  # a session of its own: boto3's default session is not thread-safe
    return session.client("s3", endpoint_url=settings.s3_endpoint_url or None,
                          region_name=settings.s3_region or None, config=config, **credentials)


class S3BlobStore:
    """Objects `<prefix><key>` in one bucket. Raises Unavailable when the store cannot be reached."""

    def __init__(self, client: Any, *, bucket: str, prefix: str = "", part_bytes: int = PART_BYTES) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix
        self.part_bytes = max(part_bytes, MIN_PART_BYTES)  # of put_file's multipart uploads

    def _name(self, key: str) -> str:
        if not key or key.startswith("/"):
            raise ValueError(f"bad blob key {key!r}")
        return self.prefix + key

    def put(self, session: Session, key: str, data: bytes) -> None:
        name = self._name(key)
        _call(lambda: self._client.put_object(Bucket=self.bucket, Key=name, Body=data))
        on_outcome(session, rolled_back=lambda: self._remove_quietly([name]))

    def put_file(self, session: Session, key: str, source: BinaryIO, size: int) -> None:
        name = self._name(key)
        if size <= self.part_bytes:  # one request, as put: at most one part in memory
            data = b"".join(file_pieces(source, size, self.part_bytes))
            _call(lambda: self._client.put_object(Bucket=self.bucket, Key=name, Body=data))
        else:
            self._put_parts(name, source, size)
        on_outcome(session, rolled_back=lambda: self._remove_quietly([name]))

    def _put_parts(self, name: str, source: BinaryIO, size: int) -> None:
        """A multipart upload, one part in memory at a time; aborted (its parts dropped) when any step fails."""
        started = _call(lambda: self._client.create_multipart_upload(Bucket=self.bucket, Key=name))
        upload_id = started["UploadId"]
        try:
            parts = []
            for number, piece in enumerate(file_pieces(source, size, self.part_bytes), start=1):
                answer = _call(lambda n=number, p=piece: self._client.upload_part(  # type: ignore[misc]
                    Bucket=self.bucket, Key=name, UploadId=upload_id, PartNumber=n, Body=p))
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            _call(lambda: self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts}))
        except BaseException:
            try:
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
            except Exception:  # noqa: BLE001 - a bucket lifecycle rule for incomplete uploads cleans up the rest
                log.warning("could not abort the multipart upload of %s", name, exc_info=True)
            raise

    def reachable(self) -> bool:
        """Whether the bucket answers (for the health service); never raises."""
        try:
            _call(lambda: self._client.head_bucket(Bucket=self.bucket))
            return True
        except Exception:
            return False

    def get(self, session: Session, key: str) -> bytes | None:
        reader = self.open(key, 1024 * 1024)
        return None if reader is None else reader.read_all()

    def open(self, key: str, chunk_bytes: int) -> BlobReader | None:
        name = self._name(key)
        try:
            response = _call(lambda: self._client.get_object(Bucket=self.bucket, Key=name))
        except _NotFound:
            return None
        body = response["Body"]
        return BlobReader(_body_chunks(body, chunk_bytes), body.close)

    def delete(self, session: Session, key: str) -> None:
        # Deletes of one transaction go out together after its commit (DeleteObjects takes 1000 keys).
        pending: list[str] | None = session.info.get(_PENDING_DELETES)
        if pending is None:
            pending = session.info[_PENDING_DELETES] = []
            on_outcome(session, committed=lambda: self._remove_quietly(pending),
                       rolled_back=pending.clear)
        pending.append(self._name(key))

    # -- the orphan sweep -------------------------------------------------------------------------
    def keys_written_before(self, cutoff: datetime) -> Iterator[list[str]]:
        paginator = self._client.get_paginator("list_objects_v2")
        pages = iter(paginator.paginate(Bucket=self.bucket, Prefix=self.prefix))
        while (page := _call(lambda: next(pages, None))) is not None:  # one page of 1000 keys at a time
            keys = [item["Key"][len(self.prefix):] for item in page.get("Contents", ())
                    if item["LastModified"] < cutoff]
            if keys:
                yield keys

    def remove_now(self, keys: list[str]) -> None:
        names = [self._name(k) for k in keys]
        for start in range(0, len(names), DELETE_BATCH):
            batch = names[start:start + DELETE_BATCH]
            answer = _call(lambda b=batch: self._client.delete_objects(  # type: ignore[misc]
                Bucket=self.bucket, Delete={"Objects": [{"Key": n} for n in b], "Quiet": True}))
            for error in answer.get("Errors", ()):
                log.warning("could not delete blob %s: %s", error.get("Key"), error.get("Message"))

    def _remove_quietly(self, names: list[str]) -> None:
        """After a commit or rollback nothing may raise: a failure leaves orphans for the sweep."""
        keys = [n[len(self.prefix):] for n in names]
        try:
            self.remove_now(keys)
        except Exception:  # noqa: BLE001 - the sweep removes what is left
            log.warning("could not delete %d blob(s); the orphan sweep will", len(keys), exc_info=True)


_PENDING_DELETES = "pixelcheck.s3_pending_deletes"


class _NotFound(Exception):
    pass


def _call(fn: Callable[[], T]) -> T:
    """fn's result; a missing object raises _NotFound, an unreachable or overloaded store Unavailable."""
    from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

    try:
        return fn()
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _MISSING:
            raise _NotFound(code) from exc
        if code in _TRANSIENT:
            raise _unavailable() from exc
        raise
    except (ConnectionError, HTTPClientError) as exc:
        raise _unavailable() from exc
    except BotoCoreError as exc:
        if "timeout" in type(exc).__name__.lower():
            raise _unavailable() from exc
        raise


def _unavailable() -> Unavailable:
    return Unavailable("The blob store is unreachable; try again shortly", reason="BLOB_STORE_UNAVAILABLE",
                       retry_after_seconds=2)


def _body_chunks(body: Any, chunk_bytes: int) -> Iterator[bytes]:
    while True:
        chunk = _call(lambda: body.read(chunk_bytes))
        if not chunk:
            return
        yield chunk
