"""AuditService: reads the request, calls one use case, converts the result."""

from __future__ import annotations

from grpc import aio

from pixelcheck.api import convert
from pixelcheck.api.calls import current_peer, current_principal, current_request_id
from pixelcheck.bootstrap import Container
from pixelcheck.offload import Offloader
from pixelcheck.v1 import audit_pb2, audit_pb2_grpc


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, container: Container, offload: Offloader) -> None:
        self._c = container
        self._run = offload.run

    async def RecordEvent(self, request: audit_pb2.RecordEventRequest,
                          context: aio.ServicerContext) -> audit_pb2.RecordEventResponse:
        event = await self._run(
            self._c.audit_trail.record_event, actor_id=current_principal().user_id, action=request.action,
            target=request.target, payload=convert.struct_to_dict(request.payload),
            request_id=current_request_id(), peer=current_peer())
        return audit_pb2.RecordEventResponse(event=convert.audit_event_to_proto(event))

    async def ListEvents(self, request: audit_pb2.ListEventsRequest,
                         context: aio.ServicerContext) -> audit_pb2.ListEventsResponse:
        page = await self._run(self._c.audit_trail.list_events, convert.event_filter(request),
                               page_size=request.page_size, page_token=request.page_token)
        return audit_pb2.ListEventsResponse(events=[convert.audit_event_to_proto(e) for e in page.events],
                                            next_page_token=page.next_page_token)

    async def VerifyAuditLog(self, request: audit_pb2.VerifyAuditLogRequest,
                             context: aio.ServicerContext) -> audit_pb2.VerifyAuditLogResponse:
        return convert.verification_to_proto(await self._run(self._c.audit_trail.verify))

    async def GetUsageStatistics(self, request: audit_pb2.GetUsageStatisticsRequest,
                                 context: aio.ServicerContext) -> audit_pb2.GetUsageStatisticsResponse:
        stats = await self._run(self._c.audit_trail.usage_statistics,
                                since=convert.optional_time(request, "since"),
                                until=convert.optional_time(request, "until"))
        return convert.usage_to_proto(stats)
