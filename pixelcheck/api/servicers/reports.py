"""ReportsService: reads the request, calls one use case, converts the result."""

from __future__ import annotations

from collections.abc import AsyncIterator

from grpc import aio

from pixelcheck.api import convert
from pixelcheck.api.calls import current_principal
from pixelcheck.bootstrap import Container
from pixelcheck.offload import Offloader
from pixelcheck.v1 import reports_pb2, reports_pb2_grpc


class ReportsServicer(reports_pb2_grpc.ReportsServiceServicer):
    def __init__(self, container: Container, offload: Offloader) -> None:
        self._c = container
        self._run = offload.run

    async def CreateReport(  # noqa: N802 - gRPC method name
        self, request: reports_pb2.CreateReportRequest, context: aio.ServicerContext
    ) -> reports_pb2.CreateReportResponse:
        report = await self._run(self._c.reports.create_report, current_principal(),
                                 image_ids=list(request.image_ids),
                                 format=convert.report_format_name(request.format), title=request.title)
        return reports_pb2.CreateReportResponse(report=convert.report_to_proto(report))

    async def GetReport(  # noqa: N802 - gRPC method name
        self, request: reports_pb2.GetReportRequest, context: aio.ServicerContext
    ) -> reports_pb2.GetReportResponse:
        report = await self._run(self._c.reports.get_report, current_principal(), request.report_id)
        return reports_pb2.GetReportResponse(report=convert.report_to_proto(report))

    async def ListReports(  # noqa: N802 - gRPC method name
        self, request: reports_pb2.ListReportsRequest, context: aio.ServicerContext
    ) -> reports_pb2.ListReportsResponse:
        page = await self._run(self._c.reports.list_reports, current_principal(),
                               page_size_value=request.page_size, page_token=request.page_token)
        return reports_pb2.ListReportsResponse(reports=[convert.report_to_proto(r) for r in page.reports],
                                               next_page_token=page.next_page_token)

    async def DownloadReport(  # noqa: N802 - gRPC method name
        self, request: reports_pb2.DownloadReportRequest, context: aio.ServicerContext
    ) -> AsyncIterator[reports_pb2.DownloadReportResponse]:
        header, reader = await self._run(self._c.reports.open_download, current_principal(), request.report_id)
        try:
            yield convert.report_file_header(header)
            while chunk := await self._run(reader.read_chunk):  # the blob store streams: one chunk in memory
                yield reports_pb2.DownloadReportResponse(chunk=chunk)
        finally:
            reader.close()  # quick for every store (drops the HTTP body, closes a file), safe when cancelled
