#!/usr/bin/env python3
"""Memory of a large video clip on its way in and back out: a clip of --mib MiB (a short H.264 clip padded with
an MP4 `free` box) received as an upload stream of 1 MiB chunks, checked (probed from its temporary file) and
stored (put_file) in each blob store asked for, then copied back for the worker (local_copy) and read frame by
frame. Reports, per step, Python's traced peak (tracemalloc) and the growth of the process's peak resident set
(VmHWM, reset before each step), against the clip's size: a clip held whole in memory would show it.

    .venv/bin/python scripts/bench/clip_memory.py [--mib 150] [--stores database,filesystem]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import struct
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.analysis.detector.video_reader import VideoFrames
from pixelcheck.blobs import BlobStore, FileBlobStore, SqlBlobStore
from pixelcheck.blobs.local_copy import local_copy
from pixelcheck.db import make_engine, make_session_factory, unit_of_work, upgrade
from pixelcheck.ingestion.receiving import Message, receive_upload
from pixelcheck.ingestion.validation import UploadLimits, UploadMetadata, decode_image
from pixelcheck.video_formats import probe_video

MIB = 1 << 20


def short_clip() -> bytes:
    """Two seconds of 320x240 H.264 at 10 fps."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        rng = np.random.default_rng(1)
        for _ in range(20):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (240, 320, 3), np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def padded_chunks(clip: bytes, size: int) -> Iterator[bytes]:
    yield clip + struct.pack(">I4s", size - len(clip), b"free")
    zeros, left = bytes(MIB), size - len(clip) - 8
    while left > 0:
        yield zeros[: min(MIB, left)]
        left -= MIB


def reset_peak_rss() -> int:
    """Resets the kernel's peak-RSS mark (Linux) and returns the resident set now, in bytes."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def measured(name: str, step: Callable[[], Any], rows: list[tuple[str, float, float, float]]) -> Any:
    rss = reset_peak_rss()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rows.append((name, time.perf_counter() - started, peak / MIB, (_status("VmHWM") - rss) / MIB))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=150)
    parser.add_argument("--stores", default="database,filesystem")
    args = parser.parse_args()
    size = args.mib * MIB
    clip = short_clip()
    limits = UploadLimits(max_bytes=10 * MIB, max_chunk_bytes=MIB, max_side=12_000, max_pixels=50_000_000,
                          video_max_bytes=max(size, 200 * MIB))
    rows: list[tuple[str, float, float, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        url = f"sqlite:///{root / 'bench.db'}"
        upgrade(url)
        sessions = make_session_factory(make_engine(url))
        stores: dict[str, BlobStore] = {"database": SqlBlobStore(sessions), "filesystem": FileBlobStore(root / "blobs")}
        for name in args.stores.split(","):
            _measure_store(name, stores[name], sessions, clip, size, limits, folder, rows)
    print(f"A {args.mib} MiB clip ({len(clip)} bytes of H.264, the rest a free box):")
    print(f"{'step':<36} {'seconds':>8} {'traced peak MiB':>16} {'peak RSS growth MiB':>20}")
    for step, seconds, traced, rss in rows:
        print(f"{step:<36} {seconds:>8.2f} {traced:>16.1f} {rss:>20.1f}")


def _measure_store(name: str, store: BlobStore, sessions: sessionmaker[Session], clip: bytes, size: int,
                   limits: UploadLimits, folder: str, rows: list[tuple[str, float, float, float]]) -> None:
    async def messages() -> AsyncIterator[Message]:
        yield "metadata", UploadMetadata(filename="big.mp4", size_bytes=size, content_type="video/mp4", sha256="",
                                         request_id="")
        for chunk in padded_chunks(clip, size):
            yield "chunk", chunk

    upload = measured(f"{name}: receive", lambda: asyncio.run(receive_upload(
        messages(), limits, lambda *_: None, spool_dir=folder)), rows)
    measured(f"{name}: check", lambda: decode_image(upload.source, limits), rows)
    measured(f"{name}: store", lambda: _store(store, sessions, upload), rows)
    upload.discard()
    measured(f"{name}: copy back and read frames", lambda: _read_back(store, folder), rows)


def _store(store: BlobStore, sessions: sessionmaker[Session], upload: Any) -> None:
    with unit_of_work(sessions) as session, upload.open() as source:
        store.put_file(session, "image/big", source, upload.size)


def _read_back(store: BlobStore, folder: str) -> int:
    with local_copy(store, "image/big", folder) as path:
        assert path is not None
        clip = probe_video(path, "video/mp4")
        return sum(1 for frame in VideoFrames(path, clip, clip.frame_count).survey() if frame.picture)


if __name__ == "__main__":
    main()
