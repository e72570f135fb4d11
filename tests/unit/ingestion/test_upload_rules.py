"""Upload rules at the edge: metadata, streaming limits, sniffed type, full decode, dimensions."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from pixelcheck.errors import DomainError, InvalidInput, TooLarge
from pixelcheck.ingestion.receiving import Message, ReceivedUpload, receive_upload
from pixelcheck.ingestion.validation import (
    UploadLimits,
    UploadMetadata,
    check_declared_type,
    clean_filename,
    decode_image,
    sniff_content_type,
)
from tests import images, videos

LIMITS = UploadLimits(max_bytes=1000, max_chunk_bytes=300, max_side=12_000, max_pixels=50_000_000)
IMAGE_LIMITS = UploadLimits(max_bytes=10 << 20, max_chunk_bytes=1 << 20, max_side=12_000, max_pixels=50_000_000)


def meta(size: int, sha256: str = "", **kw: str) -> UploadMetadata:
    return UploadMetadata(filename=kw.get("filename", "a.jpg"), size_bytes=size,
                          content_type=kw.get("content_type", ""), sha256=sha256, request_id=kw.get("request_id", ""))


class Stream:
    """An upload stream that counts how many messages the receiver pulled."""

    def __init__(self, messages: list[Message], endless_chunk: bytes | None = None) -> None:
        self.messages = messages
        self.endless_chunk = endless_chunk
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[Message]:
        for message in self.messages:
            self.pulled += 1
            yield message
        while self.endless_chunk is not None:
            self.pulled += 1
            yield "chunk", self.endless_chunk


async def receive(stream: Stream, limits: UploadLimits = LIMITS) -> tuple[object, list[DomainError]]:
    rejected: list[DomainError] = []
    try:
        result = await receive_upload(stream.__aiter__(), limits, lambda e, *_: rejected.append(e))
    except DomainError as exc:
        return exc, rejected
    return result, rejected


async def test_upload_is_assembled_and_hashed_across_chunks() -> None:
    data = bytes(range(256)) * 3
    digest = hashlib.sha256(data).hexdigest()
    result, rejected = await receive(Stream([("metadata", meta(len(data), digest)), ("chunk", data[:300]),
                                             ("chunk", data[300:600]), ("chunk", data[600:])]))
    assert not rejected
    assert result.data == data and result.sha256 == digest  # type: ignore[attr-defined]


async def test_chunk_before_metadata_is_rejected() -> None:
    error, rejected = await receive(Stream([("chunk", b"x")]))
    assert isinstance(error, InvalidInput) and error.reason == "METADATA_MISSING"
    assert rejected == [error]


async def test_metadata_sent_twice_is_rejected() -> None:
    error, _ = await receive(Stream([("metadata", meta(3)), ("metadata", meta(3))]))
    assert isinstance(error, InvalidInput) and error.reason == "METADATA_REPEATED"


async def test_message_without_payload_is_rejected() -> None:
    error, _ = await receive(Stream([("metadata", meta(3)), ("empty", None)]))
    assert isinstance(error, InvalidInput) and error.reason == "EMPTY_MESSAGE"


async def test_oversized_chunk_is_rejected() -> None:
    error, _ = await receive(Stream([("metadata", meta(500)), ("chunk", b"x" * 301)]))
    assert isinstance(error, InvalidInput) and error.reason == "CHUNK_TOO_LARGE"


async def test_declared_size_over_limit_is_refused_before_any_chunk() -> None:
    stream = Stream([("metadata", meta(5000))], endless_chunk=b"x" * 300)
    error, _ = await receive(stream)
    assert isinstance(error, TooLarge) and error.reason == "UPLOAD_TOO_LARGE"
    assert stream.pulled == 1


async def test_stream_over_limit_is_cut_off_without_reading_the_rest() -> None:
    # The client lies about the size: the receiver stops the moment the limit is crossed.
    stream = Stream([("metadata", meta(900))], endless_chunk=b"x" * 300)
    error, _ = await receive(stream)
    assert isinstance(error, (TooLarge, InvalidInput))
    assert stream.pulled <= 5  # metadata + at most 4 chunks of 300 bytes against a 1000-byte limit


async def test_more_bytes_than_declared_is_a_size_mismatch() -> None:
    error, _ = await receive(Stream([("metadata", meta(10)), ("chunk", b"x" * 11)]))
    assert isinstance(error, InvalidInput) and error.reason == "SIZE_MISMATCH"


async def test_fewer_bytes_than_declared_is_a_size_mismatch() -> None:
    error, _ = await receive(Stream([("metadata", meta(10)), ("chunk", b"x" * 9)]))
    assert isinstance(error, InvalidInput) and error.reason == "SIZE_MISMATCH"


async def test_sha256_mismatch_is_rejected_with_field_violation() -> None:
    error, _ = await receive(Stream([("metadata", meta(3, "0" * 64)), ("chunk", b"abc")]))
    assert isinstance(error, InvalidInput) and error.reason == "CHECKSUM_MISMATCH"
    assert error.violations[0][0] == "metadata.sha256"


async def test_invalid_metadata_lists_every_bad_field() -> None:
    bad = UploadMetadata(filename="", size_bytes=0, content_type="", sha256="xyz", request_id="r" * 129)
    error, _ = await receive(Stream([("metadata", bad)]))
    assert isinstance(error, InvalidInput) and error.reason == "INVALID_METADATA"
    assert {f for f, _ in error.violations} == {"metadata.filename", "metadata.size_bytes", "metadata.sha256",
                                                "metadata.request_id"}


def test_filename_loses_path_components_and_control_characters() -> None:
    assert clean_filename("../../etc/passwd") == "passwd"
    assert clean_filename("C:\\Users\\me\\photo.jpg") == "photo.jpg"
    assert clean_filename("a\x00b\n.png") == "ab.png"


@pytest.mark.parametrize(("data", "expected"), [
    (images.jpeg(32, 32), "image/jpeg"), (images.png(32, 32), "image/png"), (images.webp(32, 32), "image/webp"),
    (images.gif(), None), (b"%PDF-1.7", None), (b"", None)])
def test_type_is_sniffed_from_the_bytes(data: bytes, expected: str | None) -> None:
    assert sniff_content_type(data[:16]) == expected


@pytest.mark.parametrize("make", [images.jpeg, images.png, images.webp])
def test_accepted_formats_decode_with_their_dimensions(make) -> None:  # type: ignore[no-untyped-def]
    decoded = decode_image(make(320, 200), IMAGE_LIMITS)
    assert (decoded.width, decoded.height) == (320, 200)


def test_gif_is_an_unsupported_type() -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_image(images.gif(), IMAGE_LIMITS)
    assert caught.value.reason == "UNSUPPORTED_TYPE"


@pytest.mark.parametrize("make", [images.jpeg, images.png, images.webp])
def test_truncated_image_does_not_decode(make) -> None:  # type: ignore[no-untyped-def]
    data = make(400, 300)
    with pytest.raises(InvalidInput) as caught:
        decode_image(data[: len(data) // 2], IMAGE_LIMITS)
    assert caught.value.reason == "UNDECODABLE_IMAGE"


def test_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = images.huge_flat_png()
    assert len(bomb) < 200_000
    with pytest.raises(TooLarge) as caught:
        decode_image(bomb, IMAGE_LIMITS)
    assert caught.value.reason == "DECOMPRESSION_BOMB"


def test_image_over_the_megapixel_limit_is_refused_before_decoding() -> None:
    with pytest.raises(TooLarge) as caught:
        decode_image(images.huge_flat_png(8000, 7500), IMAGE_LIMITS)  # 60 MP > 50 MP
    assert caught.value.reason == "IMAGE_DIMENSIONS_TOO_LARGE"


def test_side_limit_is_configurable() -> None:
    limits = UploadLimits(max_bytes=10 << 20, max_chunk_bytes=1 << 20, max_side=200, max_pixels=50_000_000)
    with pytest.raises(TooLarge):
        decode_image(images.png(201, 10), limits)
    assert decode_image(images.png(200, 10), limits).width == 200


def test_24_megapixel_photo_is_within_the_default_limits() -> None:
    assert decode_image(images.encode(images.picture(6000, 4000), "JPEG", quality=80), IMAGE_LIMITS).width == 6000


def test_png_declared_as_jpeg_is_a_content_type_mismatch() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_declared_type("image/jpeg", "image/png")
    assert caught.value.reason == "CONTENT_TYPE_MISMATCH"
    check_declared_type("image/jpg", "image/jpeg")
    check_declared_type("", "image/png")
    check_declared_type("application/octet-stream", "image/webp")


# -- video clips: their own byte limit, when the metadata declares a video type and the bytes are a clip -----------
CLIP_LIMITS = UploadLimits(max_bytes=1000, max_chunk_bytes=300, max_side=12_000, max_pixels=50_000_000,
                           video_max_bytes=3000)


async def test_a_declared_clip_may_use_the_video_byte_limit() -> None:
    data = (videos.clip("mp4-h264") * 2)[:2500]
    chunks = [("chunk", data[at : at + 300]) for at in range(0, len(data), 300)]
    result, rejected = await receive(Stream([("metadata", meta(2500, content_type="video/mp4")), *chunks]),
                                     CLIP_LIMITS)
    assert not rejected and isinstance(result, ReceivedUpload) and result.size == 2500
    with result.open() as received:  # in a temporary file, not in memory
        assert received.read() == data and result.data == b""
    result.discard()


async def test_a_declared_clip_over_the_video_byte_limit_is_refused_before_any_chunk() -> None:
    stream = Stream([("metadata", meta(3001, content_type="video/mp4"))], endless_chunk=b"x" * 300)
    error, _ = await receive(stream, CLIP_LIMITS)
    assert isinstance(error, TooLarge) and error.reason == "VIDEO_TOO_LARGE" and stream.pulled == 1
    assert error.metadata == {"limit_bytes": "3000"} and "video_max_bytes" in error.message


async def test_bytes_declared_as_video_that_are_no_clip_get_the_image_limit_at_the_first_chunk() -> None:
    stream = Stream([("metadata", meta(2500, content_type="video/mp4"))], endless_chunk=b"\xff\xd8\xff" + b"x" * 297)
    error, _ = await receive(stream, CLIP_LIMITS)
    assert isinstance(error, TooLarge) and error.reason == "UPLOAD_TOO_LARGE" and stream.pulled == 2


async def test_an_undeclared_clip_gets_the_image_limit() -> None:
    stream = Stream([("metadata", meta(2500))], endless_chunk=b"x" * 300)
    error, _ = await receive(stream, CLIP_LIMITS)
    assert isinstance(error, TooLarge) and error.reason == "UPLOAD_TOO_LARGE" and stream.pulled == 1
