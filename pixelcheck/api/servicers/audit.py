"""AuditService: reads the request, calls one use case, converts the result."""

from __future__ import annotations

from pixelcheck.bootstrap import Container
from pixelcheck.offload import Offloader
from pixelcheck.v1 import audit_pb2_grpc


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, container: Container, offload: Offloader) -> None:
        self._c = container
        self._run = offload.run
