"""Accepting an upload on a real database: the image, its queued analysis and its audit event are one
transaction, so a server killed right after the answer loses none of them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from pixelcheck.audit.models import AuditEvent
from pixelcheck.bootstrap import Container, build_container
from pixelcheck.db import new_id, unit_of_work
from pixelcheck.errors import Cancelled, InvalidInput
from pixelcheck.iam.models import User, UserRole
from pixelcheck.iam.principal import Principal
from pixelcheck.ingestion.models import Image
from pixelcheck.ingestion.receiving import ReceivedUpload
from pixelcheck.ingestion.spool import SpoolFile
from pixelcheck.ingestion.validation import UploadMetadata
from pixelcheck.settings import Settings
from tests import images, videos


@pytest.fixture
def container(base_settings: Settings, sessions: object) -> Iterator[Container]:  # sessions: the schema is there
    built = build_container(base_settings, role="server")  # its audit writer thread is never started here
    yield built
    built.close()


def signed_up(container: Container) -> Principal:
    user_id = new_id()
    with unit_of_work(container.sessions) as session:
        session.add(User(id=user_id, username=f"u{user_id[:12]}", email=f"{user_id}@example.test",
                         display_name="Ada", is_service=False, roles=[UserRole(role_name="USER")]))
    return Principal(user_id=user_id, roles=frozenset({"USER"}))


def received(data: bytes, request_id: str) -> ReceivedUpload:
    sha256 = hashlib.sha256(data).hexdigest()
    return ReceivedUpload(metadata=UploadMetadata(filename="harbour.jpg", size_bytes=len(data),
                                                  content_type="image/jpeg", sha256=sha256, request_id=request_id),
                          data=data, sha256=sha256)


def accepted_events(container: Container, image_target: str) -> list[AuditEvent]:
    with container.read_sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == "upload.accepted",
                                                             AuditEvent.target == image_target)))


def test_an_accepted_upload_has_its_audit_event_stored_with_the_image_before_any_buffer_is_written(
        container: Container) -> None:
    principal = signed_up(container)
    request_id = new_id()
    view, duplicate = container.ingestion.accept(principal, received(images.jpeg(seed=71), request_id),
                                                 request_id=request_id, peer="ipv4:127.0.0.1:50123")
    assert not duplicate
    events = accepted_events(container, f"image:{view.id}")
    assert len(events) == 1  # written in the image's transaction, not left in the recorder's buffer
    event = events[0]
    assert (event.actor_id, event.request_id, event.peer) == (principal.user_id, request_id, "ipv4:127.0.0.1:50123")
    assert event.payload["sha256"] == view.sha256 and event.payload["filename"] == "harbour.jpg"
    assert container.audit_trail.verify().ok


def test_a_cancelled_upload_leaves_neither_the_image_nor_its_audit_event(container: Container) -> None:
    principal = signed_up(container)
    upload = received(images.jpeg(seed=72), "")
    with pytest.raises(Cancelled):
        container.ingestion.accept(principal, upload, abandoned=lambda: True)
    with container.read_sessions() as session:
        assert session.scalar(select(Image.id).where(Image.sha256 == upload.sha256)) is None
        assert session.scalar(select(AuditEvent.id).where(AuditEvent.action == "upload.accepted",
                                                          AuditEvent.actor_id == principal.user_id)) is None


def spooled_clip(data: bytes, folder: Path) -> ReceivedUpload:
    """A clip as the receiver hands it over: in a temporary file of the spool folder."""
    spool = SpoolFile(str(folder))
    spool.write(data)
    sha256 = hashlib.sha256(data).hexdigest()
    return ReceivedUpload(metadata=UploadMetadata(filename="clip.mp4", size_bytes=len(data), content_type="video/mp4",
                                                  sha256=sha256, request_id=""), sha256=sha256, spool=spool)


def test_a_clip_is_stored_from_its_temporary_file_which_is_then_removed(container: Container, tmp_path: Path) -> None:
    principal = signed_up(container)
    data = videos.padded(videos.clip("mp4-h264"), 3 << 20)
    view, _ = container.ingestion.accept(principal, spooled_clip(data, tmp_path))
    assert (view.content_type, view.size_bytes, view.width) == ("video/mp4", len(data), 160)
    with container.read_sessions() as session:
        assert container.blobs.get(session, f"image/{view.id}") == data
    assert list(tmp_path.iterdir()) == []


def test_a_refused_clip_stores_nothing_and_leaves_no_temporary_file(container: Container, tmp_path: Path) -> None:
    principal = signed_up(container)
    upload = spooled_clip(videos.without_box(videos.clip("mp4-h264"), b"moov"), tmp_path)
    with pytest.raises(InvalidInput) as refused:
        container.ingestion.accept(principal, upload)
    assert refused.value.reason == "VIDEO_TRUNCATED"
    assert list(tmp_path.iterdir()) == []
    with container.read_sessions() as session:
        assert session.scalar(select(Image.id).where(Image.sha256 == upload.sha256)) is None


def test_a_cancelled_clip_upload_stores_nothing_and_leaves_no_temporary_file(container: Container,
                                                                             tmp_path: Path) -> None:
    principal = signed_up(container)
    upload = spooled_clip(videos.clip("mp4-h264"), tmp_path)
    with pytest.raises(Cancelled):
        container.ingestion.accept(principal, upload, abandoned=lambda: True)
    assert list(tmp_path.iterdir()) == []
    with container.read_sessions() as session:
        assert session.scalar(select(Image.id).where(Image.sha256 == upload.sha256)) is None
