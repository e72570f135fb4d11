"""WebhooksService: reads the request, calls one use case, converts the result."""

from __future__ import annotations

from grpc import aio

from pixelcheck.api.calls import current_peer, current_principal, current_request_id
from pixelcheck.api.convert_webhooks import delivery_to_proto, endpoint_to_proto, event_type_names
from pixelcheck.bootstrap import Container
from pixelcheck.ingestion.url_fetch import check_target
from pixelcheck.offload import Offloader
from pixelcheck.v1 import webhooks_pb2, webhooks_pb2_grpc


class WebhooksServicer(webhooks_pb2_grpc.WebhooksServiceServicer):
    def __init__(self, container: Container, offload: Offloader) -> None:
        self._c = container
        self._run = offload.run

    async def _check_target(self, url: str) -> None:
        # The resolver ImportImage uses: one place to replace it (tests of hostile DNS answers).
        await check_target(self._c.url_fetch_policy, self._c.url_imports.fetcher.resolve, url)

    async def CreateWebhookEndpoint(self, request: webhooks_pb2.CreateWebhookEndpointRequest,
                                    context: aio.ServicerContext) -> webhooks_pb2.CreateWebhookEndpointResponse:
        endpoint, secret = await self._c.webhooks.create_endpoint(
            current_principal(), url=request.url, event_types=event_type_names(list(request.event_types)),
            description=request.description, check_target=self._check_target, run=self._run,
            request_id=current_request_id(), peer=current_peer())
        return webhooks_pb2.CreateWebhookEndpointResponse(endpoint=endpoint_to_proto(endpoint), secret=secret)

    async def ListWebhookEndpoints(self, request: webhooks_pb2.ListWebhookEndpointsRequest,
                                   context: aio.ServicerContext) -> webhooks_pb2.ListWebhookEndpointsResponse:
        page = await self._run(self._c.webhooks.list_endpoints, current_principal(), page_size=request.page_size,
                               page_token=request.page_token)
        return webhooks_pb2.ListWebhookEndpointsResponse(endpoints=[endpoint_to_proto(e) for e in page.items],
                                                         next_page_token=page.next_page_token)

    async def DeleteWebhookEndpoint(self, request: webhooks_pb2.DeleteWebhookEndpointRequest,
                                    context: aio.ServicerContext) -> webhooks_pb2.DeleteWebhookEndpointResponse:
        await self._run(self._c.webhooks.delete_endpoint, current_principal(), request.endpoint_id,
                        request_id=current_request_id(), peer=current_peer())
        return webhooks_pb2.DeleteWebhookEndpointResponse()

    async def RotateWebhookSecret(self, request: webhooks_pb2.RotateWebhookSecretRequest,
                                  context: aio.ServicerContext) -> webhooks_pb2.RotateWebhookSecretResponse:
        endpoint, secret = await self._run(self._c.webhooks.rotate_secret, current_principal(), request.endpoint_id,
                                           request_id=current_request_id(), peer=current_peer())
        return webhooks_pb2.RotateWebhookSecretResponse(endpoint=endpoint_to_proto(endpoint), secret=secret)

    async def ListWebhookDeliveries(self, request: webhooks_pb2.ListWebhookDeliveriesRequest,
                                    context: aio.ServicerContext) -> webhooks_pb2.ListWebhookDeliveriesResponse:
        page = await self._run(self._c.webhooks.list_deliveries, current_principal(), request.endpoint_id,
                               page_size=request.page_size, page_token=request.page_token)
        return webhooks_pb2.ListWebhookDeliveriesResponse(deliveries=[delivery_to_proto(d) for d in page.items],
                                                          next_page_token=page.next_page_token)
