"""The blob-store contract, for all three stores (the S3 one against a real S3-compatible server process):
bytes of any size round-trip, appear or vanish only with their transaction, and stream in chunks; plus the
S3 store's own promises (credentials chain, orphan sweep, an unreachable store is UNAVAILABLE)."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.audit.retention import delete_old_images, sweep_orphan_blobs
from pixelcheck.blobs import PART_BYTES, BlobStore, FileBlobStore, SqlBlobStore, make_blob_store
from pixelcheck.blobs.s3 import S3BlobStore, make_s3_client
from pixelcheck.db import make_engine, make_session_factory, unit_of_work, upgrade, utcnow
from pixelcheck.errors import Unavailable
from pixelcheck.iam.models import User
from pixelcheck.ingestion.models import Image
from pixelcheck.reports.models import Report
from pixelcheck.settings import Settings
from tests.conftest import s3_settings_for


@pytest.fixture
def sessions(fresh_database_url: Callable[[], str]) -> Iterator[sessionmaker[Session]]:
    url = fresh_database_url()
    upgrade(url)
    engine = make_engine(url, pool_size=2)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def s3_settings(base_settings: Settings, s3_endpoint_url: str) -> Settings:
    return s3_settings_for(base_settings, s3_endpoint_url)


@pytest.fixture(params=["database", "filesystem", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, sessions: sessionmaker[Session]) -> BlobStore:
    if request.param == "database":
        return SqlBlobStore(sessions)
    if request.param == "filesystem":
        return FileBlobStore(tmp_path / "blobs")
    settings = s3_settings_for(request.getfixturevalue("base_settings"), request.getfixturevalue("s3_endpoint_url"))
    return make_blob_store(settings, sessions)


def _leftovers(store: BlobStore) -> list[str]:
    """What the store physically holds, whatever the database says."""
    if isinstance(store, FileBlobStore):
        return [str(p) for p in store.root.rglob("*") if p.is_file()]
    if isinstance(store, S3BlobStore):
        return [k for batch in store.keys_written_before(utcnow() + timedelta(days=1)) for k in batch]
    return []


@pytest.mark.parametrize("size", [0, 1, PART_BYTES, PART_BYTES + 1, 12 * PART_BYTES + 5])
def test_bytes_of_any_size_round_trip(sessions: sessionmaker[Session], store: BlobStore, size: int) -> None:
    data = os.urandom(size)
    with unit_of_work(sessions) as session:
        store.put(session, "image/abc", data)
    with unit_of_work(sessions) as session:
        assert store.get(session, "image/abc") == data


def test_open_streams_the_bytes_in_chunks_of_at_most_the_asked_size(sessions: sessionmaker[Session],
                                                                     store: BlobStore) -> None:
    data = os.urandom(3 * PART_BYTES + 12_345)
    with unit_of_work(sessions) as session:
        store.put(session, "report/big", data)
    reader = store.open("report/big", 256 * 1024)
    assert reader is not None
    with reader:
        chunks = list(iter(reader.read_chunk, b""))
    assert b"".join(chunks) == data
    assert max(map(len, chunks)) <= 256 * 1024 and len(chunks) >= len(data) // (256 * 1024)
    assert store.open("report/never-stored", 1024) is None


def test_a_rolled_back_put_leaves_nothing(sessions: sessionmaker[Session], store: BlobStore) -> None:
    with pytest.raises(RuntimeError), unit_of_work(sessions) as session:
        session.execute(text("SELECT 1"))  # the transaction is open on the database
        store.put(session, "image/gone", b"bytes")
        raise RuntimeError("the transaction fails after the put")
    with unit_of_work(sessions) as session:
        assert store.get(session, "image/gone") is None
    assert _leftovers(store) == []


def test_a_put_in_a_transaction_that_never_touched_the_database_still_follows_it(
        sessions: sessionmaker[Session], store: BlobStore) -> None:
    with pytest.raises(RuntimeError), unit_of_work(sessions) as session:
        store.put(session, "image/early", b"bytes")
        raise RuntimeError("fails before any SQL")
    assert _leftovers(store) == []


def test_delete_takes_effect_on_commit_and_not_before(sessions: sessionmaker[Session], store: BlobStore) -> None:
    with unit_of_work(sessions) as session:
        store.put(session, "report/r1", b"pdf")
    with pytest.raises(RuntimeError), unit_of_work(sessions) as session:
        store.delete(session, "report/r1")
        raise RuntimeError("the deleting transaction rolls back")
    with unit_of_work(sessions) as session:
        assert store.get(session, "report/r1") == b"pdf"
    with unit_of_work(sessions) as session:
        store.delete(session, "report/r1")
        store.delete(session, "report/never-stored")
    with unit_of_work(sessions) as session:
        assert store.get(session, "report/r1") is None
    assert _leftovers(store) == []


def test_file_store_refuses_keys_that_escape_its_folder(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    for key in ("../outside", "/etc/passwd", ""):
        with pytest.raises(ValueError):
            store.get(None, key)  # type: ignore[arg-type]


# -- the S3 store's own promises ------------------------------------------------------------------------
OWNER = "0" * 32


def _owner(session: Session) -> None:
    if session.get(User, OWNER) is None:
        session.add(User(id=OWNER, username="owner", email="owner@example.test", display_name="Owner"))
        session.flush()


def _image(session: Session, image_id: str) -> None:
    _owner(session)
    session.add(Image(id=image_id, owner_id=OWNER, filename="a.jpg", content_type="image/jpeg",
                      size_bytes=3, width=1, height=1, sha256=image_id * 2))


def test_the_sweep_removes_only_old_objects_that_no_row_references(sessions: sessionmaker[Session],
                                                                    s3_settings: Settings) -> None:
    store = make_blob_store(s3_settings, sessions)
    kept_image, orphan_image = "a" * 32, "b" * 32
    with unit_of_work(sessions) as session:
        _image(session, kept_image)
        session.flush()
        store.put(session, f"image/{kept_image}", b"kept")
        ready = Report(owner_id=OWNER, scope="SINGLE", format="PDF", state="READY", title="t", filename="t.pdf")
        generating = Report(owner_id=OWNER, scope="SINGLE", format="PDF", state="GENERATING", title="t",
                            filename="t.pdf")
        session.add_all([ready, generating])
        session.flush()
        store.put(session, f"report/{ready.id}", b"%PDF ready")
    # What a crash between the write and the commit leaves: objects whose rows never committed.
    with unit_of_work(sessions) as session:
        store.put(session, f"image/{orphan_image}", b"orphan")
        store.put(session, f"report/{generating.id}", b"%PDF of a crashed build")
        store.put(session, "other/not-ours", b"left alone")

    assert sweep_orphan_blobs(sessions, store, older_than=utcnow() - timedelta(hours=1)) == 0  # within grace
    assert sweep_orphan_blobs(sessions, store, older_than=utcnow() + timedelta(seconds=5)) == 2

    assert sorted(_leftovers(store)) == sorted([f"image/{kept_image}", f"report/{ready.id}", "other/not-ours"])
    with unit_of_work(sessions) as session:
        assert store.get(session, f"image/{kept_image}") == b"kept"


def test_the_sweep_has_nothing_to_do_for_transactional_stores(sessions: sessionmaker[Session]) -> None:
    assert sweep_orphan_blobs(sessions, SqlBlobStore(sessions), older_than=utcnow() + timedelta(days=1)) == 0


def test_retention_removes_the_objects_of_the_rows_it_deletes(sessions: sessionmaker[Session],
                                                              s3_settings: Settings) -> None:
    store = make_blob_store(s3_settings, sessions)
    ids = [f"{n:032x}" for n in range(1, 4)]
    with unit_of_work(sessions) as session:
        for image_id in ids:
            _image(session, image_id)
        session.flush()
        for image_id in ids:
            store.put(session, f"image/{image_id}", b"old")
    assert delete_old_images(sessions, store, before=utcnow() + timedelta(seconds=1)) == 3
    assert _leftovers(store) == []


def test_without_keys_the_client_uses_the_default_credential_chain(
        sessions: sessionmaker[Session], s3_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-the-environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-environment-secret")
    settings = s3_settings.with_overrides(s3_access_key_id="", s3_secret_access_key="")
    client = make_s3_client(settings)
    assert client._request_signer._credentials.access_key == "from-the-environment"
    store = make_blob_store(settings, sessions)
    with unit_of_work(sessions) as session:
        store.put(session, "image/chain", b"signed with the environment's key")
    with unit_of_work(sessions) as session:
        assert store.get(session, "image/chain") == b"signed with the environment's key"


def test_an_unreachable_store_is_unavailable_not_an_internal_error(sessions: sessionmaker[Session],
                                                                   s3_settings: Settings) -> None:
    from tests.processes import free_port

    store = make_blob_store(s3_settings.with_overrides(s3_endpoint_url=f"http://127.0.0.1:{free_port()}"),
                            sessions)
    with pytest.raises(Unavailable) as raised, unit_of_work(sessions) as session:
        store.put(session, "image/x", b"bytes")
    assert raised.value.reason == "BLOB_STORE_UNAVAILABLE"
    with pytest.raises(Unavailable):
        store.open("image/x", 1024)


# -- put_file: a video clip from its temporary file, a piece at a time ----------------------------------------
@pytest.mark.parametrize("size", [0, 1, PART_BYTES + 1, 11 * PART_BYTES + 5])  # 11 MiB: two S3 parts of 8 MiB
def test_put_file_round_trips_bytes_of_any_size(sessions: sessionmaker[Session], store: BlobStore, size: int,
                                                tmp_path: Path) -> None:
    data = os.urandom(size)
    (tmp_path / "clip").write_bytes(data)
    with unit_of_work(sessions) as session, open(tmp_path / "clip", "rb") as source:
        store.put_file(session, "image/clip", source, size)
    with unit_of_work(sessions) as session:
        assert store.get(session, "image/clip") == data


def test_a_rolled_back_put_file_leaves_nothing(sessions: sessionmaker[Session], store: BlobStore) -> None:
    with pytest.raises(RuntimeError), unit_of_work(sessions) as session:
        session.execute(text("SELECT 1"))
        store.put_file(session, "image/gone", io.BytesIO(bytes(3 * PART_BYTES)), 3 * PART_BYTES)
        raise RuntimeError("the transaction fails after the put")
    with unit_of_work(sessions) as session:
        assert store.get(session, "image/gone") is None
    assert _leftovers(store) == []


@pytest.mark.parametrize("told", [PART_BYTES + 10, PART_BYTES - 10], ids=["file-shorter", "file-longer"])
def test_put_file_refuses_a_file_whose_size_is_not_the_one_told_and_keeps_nothing(
        sessions: sessionmaker[Session], store: BlobStore, told: int) -> None:
    with pytest.raises(ValueError), unit_of_work(sessions) as session:
        store.put_file(session, "image/odd", io.BytesIO(bytes(PART_BYTES)), told)
    with unit_of_work(sessions) as session:
        assert store.get(session, "image/odd") is None
    assert _leftovers(store) == []


def test_the_database_store_keeps_no_part_of_a_clip_in_the_session(sessions: sessionmaker[Session]) -> None:
    store = SqlBlobStore(sessions)
    with unit_of_work(sessions) as session:
        store.put_file(session, "image/clip", io.BytesIO(bytes(5 * PART_BYTES)), 5 * PART_BYTES)
        assert not session.new and len(session.identity_map) == 0  # each part went out and was let go
    with unit_of_work(sessions) as session:
        assert session.scalar(text("SELECT COUNT(*) FROM blobs WHERE `key` = 'image/clip'")) == 5


class _FailingParts:
    """An S3 client whose upload_part fails from the second part on (the rest passes through)."""

    def __init__(self, client: object) -> None:
        self._client = client
        self.parts = 0

    def upload_part(self, **kwargs: object) -> object:
        self.parts += 1
        if self.parts >= 2:
            raise RuntimeError("the network went away mid-upload")
        return self._client.upload_part(**kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)


def test_s3_put_file_goes_up_in_parts_and_a_failed_upload_is_aborted(sessions: sessionmaker[Session],
                                                                     s3_settings: Settings) -> None:
    client = make_s3_client(s3_settings)
    store = S3BlobStore(client, bucket=s3_settings.s3_bucket, prefix=s3_settings.s3_prefix)
    size = 2 * store.part_bytes + 7
    with unit_of_work(sessions) as session:
        store.put_file(session, "image/parts", io.BytesIO(b"x" * size), size)
    head = client.head_object(Bucket=s3_settings.s3_bucket, Key=f"{s3_settings.s3_prefix}image/parts")
    assert head["ContentLength"] == size and head["ETag"].strip('"').endswith("-3")  # a multipart object
    failing = S3BlobStore(_FailingParts(client), bucket=s3_settings.s3_bucket, prefix=s3_settings.s3_prefix)
    with pytest.raises(RuntimeError), unit_of_work(sessions) as session:
        failing.put_file(session, "image/broken", io.BytesIO(b"y" * size), size)
    uploads = client.list_multipart_uploads(Bucket=s3_settings.s3_bucket).get("Uploads", [])
    assert [u for u in uploads if u["Key"].endswith("image/broken")] == []
    assert sorted(_leftovers(store)) == ["image/parts"]
