"""The blob-store seam: bytes of any size round-trip, and appear or vanish only with their transaction."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.blobs import PART_BYTES, BlobStore, FileBlobStore, SqlBlobStore
from pixelcheck.db import make_engine, make_session_factory, unit_of_work, upgrade


@pytest.fixture
def sessions(fresh_database_url: Callable[[], str]) -> Iterator[sessionmaker[Session]]:
    url = fresh_database_url()
    upgrade(url)
    engine = make_engine(url, pool_size=2)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(params=["database", "filesystem"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return SqlBlobStore() if request.param == "database" else FileBlobStore(tmp_path / "blobs")


@pytest.mark.parametrize("size", [0, 1, PART_BYTES, PART_BYTES + 1, 12 * PART_BYTES + 5])
def test_bytes_of_any_size_round_trip(sessions: sessionmaker[Session], store: BlobStore, size: int) -> None:
    data = os.urandom(size)
    with unit_of_work(sessions) as session:
        store.put(session, "image/abc", data)
    with unit_of_work(sessions) as session:
        assert store.get(session, "image/abc") == data


def test_a_rolled_back_put_leaves_nothing(sessions: sessionmaker[Session], store: BlobStore) -> None:
    with pytest.raises(RuntimeError), unit_of_work(sessions) as session:
        store.put(session, "image/gone", b"bytes")
        raise RuntimeError("the transaction fails after the put")
    with unit_of_work(sessions) as session:
        assert store.get(session, "image/gone") is None
    if isinstance(store, FileBlobStore):
        assert not any(store.root.rglob("*")) or all(p.is_dir() for p in store.root.rglob("*"))


def test_delete_takes_effect_on_commit(sessions: sessionmaker[Session], store: BlobStore) -> None:
    with unit_of_work(sessions) as session:
        store.put(session, "report/r1", b"pdf")
    with unit_of_work(sessions) as session:
        store.delete(session, "report/r1")
        store.delete(session, "report/never-stored")
    with unit_of_work(sessions) as session:
        assert store.get(session, "report/r1") is None


def test_file_store_refuses_keys_that_escape_its_folder(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    for key in ("../outside", "/etc/passwd", ""):
        with pytest.raises(ValueError):
            store.get(None, key)  # type: ignore[arg-type]
