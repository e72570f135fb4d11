"""ReportsService: reads the request, calls one use case, converts the result."""

from __future__ import annotations

from pixelcheck.bootstrap import Container
from pixelcheck.offload import Offloader
from pixelcheck.v1 import reports_pb2_grpc


class ReportsServicer(reports_pb2_grpc.ReportsServiceServicer):
    def __init__(self, container: Container, offload: Offloader) -> None:
        self._c = container
        self._run = offload.run
