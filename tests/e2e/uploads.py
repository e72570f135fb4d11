"""Client-side upload and watch steps for end-to-end tests."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from grpc import aio
from pixelcheck.v1 import common_pb2, ingestion_pb2, ingestion_pb2_grpc, results_pb2, results_pb2_grpc

MIB = 1024 * 1024
Metadata = tuple[tuple[str, str], ...]


def upload_messages(data: bytes, filename: str = "photo.jpg", *, chunk: int = MIB, size_bytes: int | None = None,
                    sha256: str | None = "", content_type: str = "", request_id: str = "",
                    external_id: str = "") -> Iterator[ingestion_pb2.UploadImageRequest]:
    """The messages of an upload: metadata, then chunks. sha256=None computes it; "" leaves it out."""
    digest = hashlib.sha256(data).hexdigest() if sha256 is None else sha256
    yield ingestion_pb2.UploadImageRequest(metadata=ingestion_pb2.UploadMetadata(
        filename=filename, size_bytes=len(data) if size_bytes is None else size_bytes, sha256=digest,
        content_type=content_type, request_id=request_id, external_id=external_id))
    for start in range(0, len(data), chunk):
        yield ingestion_pb2.UploadImageRequest(chunk=data[start:start + chunk])


async def upload(channel: aio.Channel, metadata: Metadata, data: bytes, filename: str = "photo.jpg",
                 **options: object) -> ingestion_pb2.UploadImageResponse:
    stub = ingestion_pb2_grpc.IngestionServiceStub(channel)
    return await stub.UploadImage(upload_messages(data, filename, **options), metadata=metadata)  # type: ignore[arg-type]


async def watch(channel: aio.Channel, metadata: Metadata, image_id: str,
                timeout: float = 60) -> list[results_pb2.AnalysisEvent]:
    """Every event of WatchAnalysis until the stream ends."""
    stub = results_pb2_grpc.ResultsServiceStub(channel)
    call = stub.WatchAnalysis(results_pb2.WatchAnalysisRequest(image_id=image_id), metadata=metadata,
                              timeout=timeout)
    return [response.event async for response in call]


def verdict_part(result: results_pb2.AnalysisResult) -> results_pb2.AnalysisResult:
    """The result without its region map, which a worker goes on making after the verdict."""
    copy = results_pb2.AnalysisResult()
    copy.CopyFrom(result)
    copy.ClearField("region_map")
    return copy


def stage_names(events: list[results_pb2.AnalysisEvent]) -> list[str]:
    return [common_pb2.AnalysisStage.Name(e.stage).removeprefix("ANALYSIS_STAGE_") for e in events]


def state_name(value: int) -> str:
    return common_pb2.AnalysisState.Name(value).removeprefix("ANALYSIS_STATE_")
