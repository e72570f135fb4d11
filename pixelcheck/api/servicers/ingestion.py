"""IngestionService: reads the request, calls one use case, converts the result."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from grpc import aio

from pixelcheck.api.calls import current_peer, current_principal, current_request_id
from pixelcheck.api.convert_analysis import image_to_proto, upload_metadata
from pixelcheck.bootstrap import Container
from pixelcheck.errors import DomainError
from pixelcheck.ingestion.importing import ImportRequest
from pixelcheck.ingestion.receiving import Message, receive_upload
from pixelcheck.offload import Offloader
from pixelcheck.v1 import ingestion_pb2, ingestion_pb2_grpc


async def _messages(requests: AsyncIterator[ingestion_pb2.UploadImageRequest]) -> AsyncIterator[Message]:
    async for request in requests:
        kind = request.WhichOneof("payload")
        if kind == "metadata":
            yield "metadata", upload_metadata(request.metadata)
        elif kind == "chunk":
            yield "chunk", request.chunk
        else:
            yield "empty", None
    # grpc.aio ends the request stream of a call cut off by the client or by shutdown as if the client had
    # finished sending, and delivers the cancellation at the next await: take it here, before anything is stored.
    await asyncio.sleep(0)


class IngestionServicer(ingestion_pb2_grpc.IngestionServiceServicer):
    def __init__(self, container: Container, offload: Offloader) -> None:
        self._c = container
        self._offload = offload
        self._run = offload.run

    async def UploadImage(self, request_iterator: AsyncIterator[ingestion_pb2.UploadImageRequest],
                          context: aio.ServicerContext) -> ingestion_pb2.UploadImageResponse:
        principal, ingestion = current_principal(), self._c.ingestion
        request_id, peer = current_request_id(), current_peer()

        def rejected(error: DomainError, size: int, sha256: str, filename: str) -> None:
            ingestion.record_rejection(principal, error, size, sha256, filename, request_id=request_id, peer=peer)

        try:  # before a byte is read: a refused client has sent (and we have stored) nothing
            await self._run(self._c.admission.admit_upload, principal)
        except DomainError as error:
            rejected(error, 0, "", "")
            raise
        upload = await receive_upload(_messages(request_iterator), ingestion.limits, rejected,
                                      spool_dir=ingestion.spool_dir)
        self._c.metrics.upload_bytes.inc(upload.size)
        # accept removes a clip's temporary file in its own thread, even when this call is cancelled meanwhile
        image, duplicate = await self._offload.run_abandonable(ingestion.accept, principal, upload,
                                                               request_id=request_id, peer=peer)
        return ingestion_pb2.UploadImageResponse(image=image_to_proto(image), duplicate=duplicate)

    async def GetImage(self, request: ingestion_pb2.GetImageRequest,
                       context: aio.ServicerContext) -> ingestion_pb2.GetImageResponse:
        image = await self._run(self._c.ingestion.get_image, current_principal(), request.image_id)
        return ingestion_pb2.GetImageResponse(image=image_to_proto(image))

    async def ListImages(self, request: ingestion_pb2.ListImagesRequest,
                         context: aio.ServicerContext) -> ingestion_pb2.ListImagesResponse:
        page = await self._run(self._c.ingestion.list_images, current_principal(), page_size=request.page_size,
                               page_token=request.page_token, owner_id=request.owner_id,
                               external_id=request.external_id)
        return ingestion_pb2.ListImagesResponse(images=[image_to_proto(i) for i in page.images],
                                                next_page_token=page.next_page_token, total_size=page.total_size)

    async def DeleteImage(self, request: ingestion_pb2.DeleteImageRequest,
                          context: aio.ServicerContext) -> ingestion_pb2.DeleteImageResponse:
        await self._run(self._c.ingestion.delete_image, current_principal(), request.image_id,
                        request_id=current_request_id(), peer=current_peer())
        return ingestion_pb2.DeleteImageResponse()

    async def ImportImage(self, request: ingestion_pb2.ImportImageRequest,
                          context: aio.ServicerContext) -> ingestion_pb2.ImportImageResponse:
        wanted = ImportRequest(url=request.url, filename=request.filename, request_id=request.request_id,
                               external_id=request.external_id)
        image, duplicate = await self._c.url_imports.import_image(
            current_principal(), wanted, run=self._run, run_abandonable=self._offload.run_abandonable,
            request_id=current_request_id(), peer=current_peer())
        return ingestion_pb2.ImportImageResponse(image=image_to_proto(image), duplicate=duplicate)
