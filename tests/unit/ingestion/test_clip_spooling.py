"""A clip being received goes to a temporary file in the spool folder, never whole into memory; a still stays in
memory as before; and the temporary file is gone after every way out: refused, cancelled, failed, or handed
over and discarded; a worker's local copy of a stored clip likewise. Also: receiving, checking and storing a
150 MiB clip stays within a few MiB of memory."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from pixelcheck.blobs import FileBlobStore
from pixelcheck.blobs.local_copy import local_copy
from pixelcheck.errors import DomainError, InvalidInput, TooLarge
from pixelcheck.ingestion.receiving import Message, ReceivedUpload, receive_upload
from pixelcheck.ingestion.spool import SpoolFolderError, prepare_spool
from pixelcheck.ingestion.validation import UploadLimits, UploadMetadata, decode_image
from tests import images, videos

LIMITS = UploadLimits(max_bytes=10 << 20, max_chunk_bytes=1 << 20, max_side=12_000, max_pixels=50_000_000,
                      video_max_bytes=200 << 20)


def meta(size: int, content_type: str = "video/mp4", sha256: str = "") -> UploadMetadata:
    return UploadMetadata(filename="clip.mp4", size_bytes=size, content_type=content_type, sha256=sha256,
                          request_id="")


async def stream(metadata: UploadMetadata, chunks: Iterable[bytes], *,
                 then: BaseException | None = None) -> AsyncIterator[Message]:
    yield "metadata", metadata
    for chunk in chunks:
        yield "chunk", chunk
    if then is not None:
        raise then


def chunked(data: bytes, size: int = 1 << 16) -> list[bytes]:
    return [data[at : at + size] for at in range(0, len(data), size)]


async def receive(messages: AsyncIterator[Message], spool: Path,
                  limits: UploadLimits = LIMITS) -> tuple[ReceivedUpload | None, list[DomainError]]:
    rejected: list[DomainError] = []
    try:
        upload = await receive_upload(messages, limits, lambda e, *_: rejected.append(e), spool_dir=str(spool))
    except DomainError:
        return None, rejected
    return upload, rejected


async def test_a_clip_is_written_to_a_temporary_file_in_the_spool_folder(tmp_path: Path) -> None:
    clip = videos.clip("mp4-h264")
    digest = hashlib.sha256(clip).hexdigest()
    upload, _ = await receive(stream(meta(len(clip), sha256=digest), chunked(clip, 1000)), tmp_path)
    assert upload is not None and upload.spool is not None and upload.data == b""
    assert isinstance(upload.source, str) and Path(upload.source).parent == tmp_path
    assert Path(upload.source).read_bytes() == clip and upload.size == len(clip) and upload.sha256 == digest
    upload.discard()
    upload.discard()  # idempotent
    assert list(tmp_path.iterdir()) == []


async def test_a_still_image_stays_in_memory_and_touches_no_file(tmp_path: Path) -> None:
    jpeg = images.jpeg(seed=5)
    upload, _ = await receive(stream(meta(len(jpeg), "image/jpeg"), chunked(jpeg, 1000)), tmp_path)
    assert upload is not None and upload.spool is None and upload.data == jpeg and upload.source == jpeg
    assert upload.open().read() == jpeg
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", ["checksum", "short", "long", "over-limit"])
async def test_a_refused_clip_leaves_no_temporary_file(tmp_path: Path, case: str) -> None:
    clip = videos.clip("mp4-h264")
    metadata = {"checksum": meta(len(clip), sha256="0" * 64), "short": meta(len(clip) + 10),
                "long": meta(len(clip) - 10), "over-limit": meta(2 << 20)}[case]
    chunks = [clip, *[bytes(1 << 20)] * 3] if case == "over-limit" else chunked(clip, 1000)
    small = UploadLimits(max_bytes=1 << 20, max_chunk_bytes=1 << 20, max_side=12_000, max_pixels=50_000_000,
                         video_max_bytes=2 << 20)
    upload, rejected = await receive(stream(metadata, chunks), tmp_path, small)
    assert upload is None and len(rejected) == 1
    assert isinstance(rejected[0], TooLarge if case == "over-limit" else InvalidInput)
    assert list(tmp_path.iterdir()) == []


async def test_a_cancelled_clip_upload_leaves_no_temporary_file(tmp_path: Path) -> None:
    clip = videos.clip("mp4-h264")
    messages = stream(meta(len(clip) * 2), chunked(clip, 1000), then=asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await receive(messages, tmp_path)
    assert list(tmp_path.iterdir()) == []


async def test_a_clip_upload_broken_off_by_an_error_leaves_no_temporary_file(tmp_path: Path) -> None:
    clip = videos.clip("mp4-h264")
    messages = stream(meta(len(clip) * 2), chunked(clip, 1000), then=ConnectionResetError("peer went away"))
    with pytest.raises(ConnectionResetError):
        await receive(messages, tmp_path)
    assert list(tmp_path.iterdir()) == []


async def test_a_150_mib_clip_is_received_checked_and_stored_within_32_mib_of_memory(tmp_path: Path) -> None:
    size = 150 << 20
    clip = videos.clip("mp4-h264")
    spool, store = tmp_path / "spool", FileBlobStore(tmp_path / "blobs")
    spool.mkdir()
    tracemalloc.start()
    try:
        upload, rejected = await receive(stream(meta(size), videos.padded_chunks(clip, size)), spool)
        assert upload is not None and not rejected
        decoded = decode_image(upload.source, LIMITS)
        session = Session()
        with upload.open() as source:
            store.put_file(session, "image/big", source, upload.size)
        session.commit()
        upload.discard()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoded.content_type == "video/mp4" and decoded.frame_count == 20
    assert (tmp_path / "blobs" / "image" / "big").stat().st_size == size
    assert list(spool.iterdir()) == []
    assert peak < 32 << 20, f"peak {peak / (1 << 20):.1f} MiB"


def test_a_workers_local_copy_of_a_clip_is_removed_however_its_block_is_left(tmp_path: Path) -> None:
    store, spool = FileBlobStore(tmp_path / "blobs"), tmp_path / "spool"
    spool.mkdir()
    clip = videos.clip("mp4-h264")
    session = Session()
    store.put(session, "image/clip", clip)
    session.commit()
    with local_copy(store, "image/clip", str(spool)) as path:
        assert path is not None and Path(path).parent == spool and Path(path).read_bytes() == clip
    with pytest.raises(RuntimeError), local_copy(store, "image/clip", str(spool)) as path:
        raise RuntimeError("the decoder failed")
    with local_copy(store, "image/never-stored", str(spool)) as path:
        assert path is None
    assert list(spool.iterdir()) == []


def test_the_spool_folder_is_made_and_files_killed_processes_left_are_swept_but_live_ones_kept(
        tmp_path: Path) -> None:
    folder = tmp_path / "spool" / "clips"
    assert prepare_spool(str(folder), stale_after_seconds=3600) == 0 and folder.is_dir()
    stale, live, other = folder / "pixelcheck-a.clip", folder / "pixelcheck-b.clip", folder / "notes.txt"
    for path in (stale, live, other):
        path.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    for path in (stale, other):
        os.utime(path, (two_hours_ago, two_hours_ago))
    assert prepare_spool(str(folder), stale_after_seconds=3600) == 1
    assert not stale.exists() and live.exists() and other.exists()


def test_a_spool_folder_that_cannot_be_written_is_refused_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    with pytest.raises(SpoolFolderError, match=r"a-file/clips \(PIXELCHECK_SPOOL_DIR\) cannot be written"):
        prepare_spool(str(blocker / "clips"), stale_after_seconds=60)


def test_serve_and_worker_refuse_to_start_on_an_unusable_spool_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    env = {**os.environ, "PIXELCHECK_SPOOL_DIR": str(blocker / "clips"),
           "PIXELCHECK_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    for command in ("serve", "worker"):
        done = subprocess.run([sys.executable, "-m", "pixelcheck", command], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 1 and f"pixelcheck {command}: the spool folder" in done.stderr, done.stderr
