"""Every upload rule through a real stub: its status code, its ErrorInfo reason, nothing stored but an audit event."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Iterator

import grpc
import pytest
from grpc import aio
from pixelcheck.v1 import ingestion_pb2, ingestion_pb2_grpc
from sqlalchemy import func, select

from pixelcheck.audit.models import AuditEvent
from pixelcheck.ingestion.models import Image
from tests import images
from tests.e2e.flows import SignedInUser, fails, failure_of, new_user
from tests.e2e.servers import LiveServer
from tests.e2e.uploads import MIB, upload_messages

pytestmark = pytest.mark.asyncio(loop_scope="session")
Request = ingestion_pb2.UploadImageRequest


def metadata_message(size: int, filename: str = "x.jpg", **kw: object) -> Request:
    return Request(metadata=ingestion_pb2.UploadMetadata(filename=filename, size_bytes=size, **kw))  # type: ignore[arg-type]


async def rejected(server: LiveServer, user: SignedInUser, messages: Iterator[Request] | list[Request]):  # type: ignore[no-untyped-def]
    stub = ingestion_pb2_grpc.IngestionServiceStub(server.channel)
    return await fails(stub.UploadImage(iter(messages), metadata=user.metadata))


def stored_images(server: LiveServer, user: SignedInUser) -> int:
    with server.container.read_sessions() as session:
        return session.scalar(select(func.count()).select_from(Image).where(Image.owner_id == user.user.id)) or 0


async def eventually_rejected(server: LiveServer, user: SignedInUser, timeout: float = 10.0) -> list[AuditEvent]:
    """The user's upload.rejected events once there is one (the server may finish after the client gave up)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (events := await asyncio.to_thread(rejection_events, server, user)):
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    return events


def rejection_events(server: LiveServer, user: SignedInUser) -> list[AuditEvent]:
    server.container.audit_recorder.flush()
    with server.container.read_sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.actor_id == user.user.id,
                                                             AuditEvent.action == "upload.rejected")))


async def test_chunk_before_metadata_is_invalid(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    failure = await rejected(live_server, user, [Request(chunk=b"abc")])
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.reason == "METADATA_MISSING"


async def test_metadata_twice_is_invalid(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    failure = await rejected(live_server, user, [metadata_message(3), metadata_message(3)])
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.reason == "METADATA_REPEATED"


async def test_missing_size_is_invalid_with_field_violation(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    failure = await rejected(live_server, user, [metadata_message(0)])
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.reason == "INVALID_METADATA"
    assert "metadata.size_bytes" in failure.field_violations


async def test_chunk_over_one_mib_is_invalid(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    failure = await rejected(live_server, user, [metadata_message(2 * MIB), Request(chunk=b"x" * (MIB + 1))])
    assert failure.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED)


async def test_declared_size_over_limit_is_resource_exhausted(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    failure = await rejected(live_server, user, [metadata_message(11 * MIB)])
    assert failure.code == grpc.StatusCode.RESOURCE_EXHAUSTED and failure.reason == "UPLOAD_TOO_LARGE"


async def test_endless_stream_is_cut_off_at_the_limit_without_reading_the_rest(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    sent = itertools.count()

    def endless() -> Iterator[Request]:
        yield metadata_message(9 * MIB)  # a lie: far more follows
        chunk = b"\xff" * MIB
        while True:
            next(sent)
            yield Request(chunk=chunk)

    stub = ingestion_pb2_grpc.IngestionServiceStub(live_server.channel)
    try:
        await stub.UploadImage(endless(), metadata=user.metadata)
    except aio.AioRpcError as error:
        own_write_failed = error.code() is grpc.StatusCode.INTERNAL and "SendMessageOperation" in (
            error.debug_error_string() or "")
        if not own_write_failed:
            failure = failure_of(error)
            assert failure.code in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT)
            assert failure.reason in ("UPLOAD_TOO_LARGE", "SIZE_MISMATCH")
    else:
        raise AssertionError("an endless upload was accepted")
    # grpc's client may lose the race between writing its next chunk and the server's status: it then reports
    # its own failed write, without the server's details. What the server decided is in the audit trail.
    [event] = await eventually_rejected(live_server, user)
    assert event.payload["reason"] in ("UPLOAD_TOO_LARGE", "SIZE_MISMATCH")
    assert next(sent) < 64  # the call ended long before the client ran out of chunks (it never would)
    assert stored_images(live_server, user) == 0


async def test_stream_over_ten_mib_is_resource_exhausted(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    data = b"\xff\xd8\xff" + b"\x00" * (11 * MIB)
    failure = await rejected(live_server, user, upload_messages(data, size_bytes=10 * MIB))
    assert failure.code in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT)


async def test_fewer_bytes_than_declared_is_a_size_mismatch(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    data = images.jpeg(seed=1)
    failure = await rejected(live_server, user, upload_messages(data, size_bytes=len(data) + 10))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.reason == "SIZE_MISMATCH"


async def test_sha256_mismatch_is_invalid(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    failure = await rejected(live_server, user, upload_messages(images.jpeg(seed=2), sha256="ab" * 32))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.reason == "CHECKSUM_MISMATCH"
    assert "metadata.sha256" in failure.field_violations


async def test_truncated_jpeg_is_undecodable(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    data = images.jpeg(seed=3)
    failure = await rejected(live_server, user, upload_messages(data[: len(data) // 2]))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.reason == "UNDECODABLE_IMAGE"


async def test_gif_is_an_unsupported_type_whatever_it_claims(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    failure = await rejected(live_server, user, upload_messages(images.gif(), "a.jpg", content_type="image/jpeg"))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.reason == "UNSUPPORTED_TYPE"


async def test_png_bytes_declared_as_jpeg_are_a_content_type_mismatch(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    failure = await rejected(live_server, user, upload_messages(images.png(seed=4), "a.jpg",
                                                                content_type="image/jpeg"))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.reason == "CONTENT_TYPE_MISMATCH"


async def test_decompression_bomb_is_resource_exhausted(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    failure = await rejected(live_server, user, upload_messages(images.huge_flat_png(), "bomb.png"))
    assert failure.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failure.reason in ("DECOMPRESSION_BOMB", "IMAGE_DIMENSIONS_TOO_LARGE")


async def test_rejected_uploads_store_nothing_but_an_audit_event(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    data = images.jpeg(seed=5)
    await rejected(live_server, user, upload_messages(data[:-200]))
    await rejected(live_server, user, upload_messages(data, sha256="cd" * 32))
    assert stored_images(live_server, user) == 0
    events = rejection_events(live_server, user)
    reasons = sorted(e.payload["reason"] for e in events)
    assert reasons == ["CHECKSUM_MISMATCH", "UNDECODABLE_IMAGE"]
    truncated = next(e for e in events if e.payload["reason"] == "UNDECODABLE_IMAGE")
    assert truncated.payload["sha256"] == hashlib.sha256(data[:-200]).hexdigest()
    assert truncated.payload["size_bytes"] == len(data) - 200 and truncated.peer


async def test_upload_needs_a_signed_in_user(live_server: LiveServer) -> None:
    stub = ingestion_pb2_grpc.IngestionServiceStub(live_server.channel)
    failure = await fails(stub.UploadImage(upload_messages(images.jpeg(seed=6))))
    assert failure.code == grpc.StatusCode.UNAUTHENTICATED


async def test_multi_page_tiff_is_invalid_with_its_own_reason(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    pages = images.encode(images.picture(96, 64, 1), "TIFF", save_all=True, append_images=[images.picture(96, 64, 2)])
    failure = await rejected(live_server, user, upload_messages(pages, "scan.tif"))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.reason == "MULTI_PAGE_IMAGE"


@pytest.mark.parametrize("header", [images.bmp_header(30_000, 30_000), images.raw_tiff(30_000, 30_000, pixels=b"")],
                         ids=["bmp", "tiff"])
async def test_bitmap_or_tiff_header_claiming_a_huge_picture_is_resource_exhausted(live_server: LiveServer,
                                                                                   header: bytes) -> None:
    user = await new_user(live_server.auth)
    failure = await rejected(live_server, user, upload_messages(header, "huge"))
    assert failure.code == grpc.StatusCode.RESOURCE_EXHAUSTED and failure.reason == "DECOMPRESSION_BOMB"
