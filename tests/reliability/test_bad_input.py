"""Fuzzed uploads and malformed request fields against a real server process: every call ends OK,
INVALID_ARGUMENT or RESOURCE_EXHAUSTED, never INTERNAL, and the server keeps running."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pixelcheck.v1 import auth_pb2, auth_pb2_grpc, ingestion_pb2, ingestion_pb2_grpc, results_pb2, results_pb2_grpc

from pixelcheck.settings import Settings
from tests import images, videos
from tests.e2e.flows import PASSWORD, bearer, unique_username
from tests.processes import ServerProcess

pytestmark = pytest.mark.reliability

UPLOAD_CODES = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
BASES = {"jpeg": images.jpeg(48, 32, seed=1), "png": images.png(48, 32, seed=2),
         "webp": images.webp(48, 32, seed=3), "bmp": images.bmp(48, 32, seed=4),
         "tiff": images.tiff(48, 32, seed=5, compression="tiff_lzw")}
# The container edge: small clips of each container, mutated the same way (their index, headers, frames).
CLIPS = {"mp4": videos.clip("mp4-h264", seconds=1, fps=5, width=64, height=48),
         "mov": videos.clip("mov-hevc", seconds=1, fps=5, width=64, height=48),
         "webm": videos.clip("webm-vp9", seconds=1, fps=5, width=64, height=48)}
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)  # any valid UTF-8
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@dataclass
class FuzzTarget:
    server: ServerProcess
    channel: grpc.Channel
    metadata: tuple[tuple[str, str], ...]

    @property
    def ingestion(self) -> ingestion_pb2_grpc.IngestionServiceStub:
        return ingestion_pb2_grpc.IngestionServiceStub(self.channel)

    @property
    def results(self) -> results_pb2_grpc.ResultsServiceStub:
        return results_pb2_grpc.ResultsServiceStub(self.channel)

    def code_of(self, call: object, request: object, **kwargs: object) -> grpc.StatusCode:
        """The status code of one call (OK when it succeeds)."""
        try:
            result = call(request, metadata=self.metadata, timeout=30, **kwargs)  # type: ignore[operator]
            if hasattr(result, "__iter__") and not hasattr(result, "ByteSize"):
                list(result)  # a server-streaming call: read it to the end
        except grpc.RpcError as error:
            return error.code()  # type: ignore[no-any-return]
        return grpc.StatusCode.OK


@pytest.fixture(scope="module")
def target(reliability_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    """A server process and a signed-in user; after the module, the server must still be up and SERVING."""
    log = Path(tmp_path_factory.mktemp("fuzz")) / "server.log"
    server = ServerProcess(reliability_settings, log).start()
    channel = grpc.insecure_channel(server.address)
    try:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        username = unique_username("fuzz")
        auth.SignUp(auth_pb2.SignUpRequest(username=username, email=f"{username}@example.org", password=PASSWORD,
                                           display_name="Fuzz"))
        token = auth.SignIn(auth_pb2.SignInRequest(login=username, password=PASSWORD)).access_token
        yield FuzzTarget(server, channel, bearer(token))
        assert server.running, f"the server died; see {log}"
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert b"unexpected error" not in log.read_bytes(), f"the server logged an unexpected error; see {log}"
    finally:
        channel.close()
        server.stop()


@st.composite
def mutated_image(draw: st.DrawFn, bases: dict[str, bytes] = BASES) -> bytes:
    """A small JPEG, PNG, WEBP, BMP or TIFF (or one of `bases`) with a few random edits (flips, cuts,
    insertions, garbage)."""
    data = bytearray(bases[draw(st.sampled_from(sorted(bases)))])
    for _ in range(draw(st.integers(0, 6))):
        position = draw(st.integers(0, max(0, len(data) - 1)))
        edit = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "append"]))
        if edit == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif edit == "truncate":
            del data[position:]
        elif edit == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        elif edit == "delete":
            del data[position:position + draw(st.integers(1, 64))]
        else:
            data += draw(st.binary(min_size=1, max_size=256))
    return bytes(data)


@st.composite
def upload_stream(draw: st.DrawFn, bases: dict[str, bytes] = BASES) -> list[ingestion_pb2.UploadImageRequest]:
    """Metadata (right, wrong or missing) and chunks of random sizes, in a right or wrong order."""
    data = draw(mutated_image(bases))
    digest = hashlib.sha256(data).hexdigest()
    metadata = ingestion_pb2.UploadMetadata(
        filename=draw(st.one_of(st.just("photo.jpg"), TEXT)),
        size_bytes=draw(st.one_of(st.just(len(data)), st.integers(-(2**63), 2**63 - 1),
                                  st.integers(len(data) - 3, len(data) + 3))),
        content_type=draw(st.one_of(st.sampled_from(["", "image/jpeg", "image/png", "image/webp", "image/bmp",
                                                     "image/tiff", "video/mp4", "video/webm", "text/html"]),
                                    TEXT)),
        sha256=draw(st.one_of(st.just(""), st.just(digest), st.just(digest.upper()),
                              st.text("0123456789abcdef", min_size=64, max_size=64), TEXT)),
        request_id=draw(st.one_of(st.just(""), TEXT)))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=12))))
    bounds = [0, *cuts, len(data)]
    chunks = [ingestion_pb2.UploadImageRequest(chunk=data[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
    first = ingestion_pb2.UploadImageRequest(metadata=metadata)
    layout = draw(st.sampled_from(["normal", "normal", "no_metadata", "metadata_twice", "metadata_last",
                                   "empty_message", "only_metadata", "nothing"]))
    return {
        "normal": [first, *chunks],
        "no_metadata": chunks,
        "metadata_twice": [first, *chunks[:1], first, *chunks[1:]],
        "metadata_last": [*chunks, first],
        "empty_message": [first, ingestion_pb2.UploadImageRequest(), *chunks],
        "only_metadata": [first],
        "nothing": [],
    }[layout]


@FUZZ
@given(stream=upload_stream())
def test_fuzzed_uploads_end_ok_invalid_or_exhausted_never_internal(target: FuzzTarget,
                                                                   stream: list[ingestion_pb2.UploadImageRequest]
                                                                   ) -> None:
    assert target.code_of(target.ingestion.UploadImage, iter(stream)) in UPLOAD_CODES


@settings(FUZZ, max_examples=80)
@given(stream=upload_stream(CLIPS))
def test_fuzzed_clips_end_ok_invalid_or_exhausted_never_internal(target: FuzzTarget,
                                                                 stream: list[ingestion_pb2.UploadImageRequest]
                                                                 ) -> None:
    assert target.code_of(target.ingestion.UploadImage, iter(stream)) in UPLOAD_CODES


def _not_an_id(value: str) -> bool:
    return re.fullmatch(r"[0-9a-f]{32}", value) is None


def _timestamp(seconds: int, nanos: int) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


@FUZZ
@given(bad_id=TEXT.filter(_not_an_id), token=st.one_of(TEXT.filter(bool), st.binary(min_size=1).map(bytes.hex)),
       page_size=st.integers(-(2**31), -1), label=st.integers(-(2**31), 2**31 - 1).filter(lambda v: v not in (0, 1, 2)),
       long_text=st.text(min_size=256, max_size=2000).filter(lambda s: len(s) > 255),
       order_by=TEXT.filter(lambda s: " ".join(s.split()).lower() not in ("", "create_time desc", "confidence desc")),
       seconds=st.one_of(st.integers(-(2**62), -62_135_596_801), st.integers(253_402_300_800, 2**62)),
       nanos=st.integers(0, 999_999_999))
def test_malformed_ids_tokens_enums_and_oversized_fields_are_invalid_arguments(
        target: FuzzTarget, bad_id: str, token: str, page_size: int, label: int, long_text: str, order_by: str,
        seconds: int, nanos: int) -> None:
    ing, res = target.ingestion, target.results
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    cases = {
        "GetImage id": (ing.GetImage, ingestion_pb2.GetImageRequest(image_id=bad_id)),
        "DeleteImage id": (ing.DeleteImage, ingestion_pb2.DeleteImageRequest(image_id=bad_id)),
        "GetResult id": (res.GetResult, results_pb2.GetResultRequest(image_id=bad_id)),
        "WatchAnalysis id": (res.WatchAnalysis, results_pb2.WatchAnalysisRequest(image_id=bad_id)),
        "ListImages owner_id": (ing.ListImages, ingestion_pb2.ListImagesRequest(owner_id=bad_id or "x")),
        "ListImages token": (ing.ListImages, ingestion_pb2.ListImagesRequest(page_token=token)),
        "ListImages page_size": (ing.ListImages, ingestion_pb2.ListImagesRequest(page_size=page_size)),
        "ListResults token": (res.ListResults, results_pb2.ListResultsRequest(page_token=token)),
        "ListResults page_size": (res.ListResults, results_pb2.ListResultsRequest(page_size=page_size)),
        "ListResults label": (res.ListResults, results_pb2.ListResultsRequest(label=label)),  # type: ignore[arg-type]
        "ListResults filename": (res.ListResults, results_pb2.ListResultsRequest(filename_contains=long_text)),
        "ListResults order_by": (res.ListResults, results_pb2.ListResultsRequest(order_by=order_by)),
        "ListResults since": (res.ListResults, results_pb2.ListResultsRequest(since=_timestamp(seconds, nanos))),
        "ListResults until": (res.ListResults, results_pb2.ListResultsRequest(until=_timestamp(seconds, nanos))),
    }
    codes = {name: target.code_of(call, request) for name, (call, request) in cases.items()}
    assert codes == dict.fromkeys(cases, invalid)
