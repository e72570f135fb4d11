"""Proto <-> domain conversion for WebhooksService."""

from __future__ import annotations

from pixelcheck.api.convert import timestamp as _ts
from pixelcheck.errors import InvalidInput
from pixelcheck.v1 import webhooks_pb2
from pixelcheck.webhooks.service import DeliveryView, EndpointView

_EVENTS = {webhooks_pb2.WEBHOOK_EVENT_TYPE_ANALYSIS_SUCCEEDED: "analysis.succeeded",
           webhooks_pb2.WEBHOOK_EVENT_TYPE_ANALYSIS_FAILED: "analysis.failed",
           webhooks_pb2.WEBHOOK_EVENT_TYPE_REPORT_READY: "report.ready"}
_EVENT_VALUES = {name: value for value, name in _EVENTS.items()}
_ENDPOINT_STATES = {"ENABLED": webhooks_pb2.WEBHOOK_ENDPOINT_STATE_ENABLED,
                    "DISABLED": webhooks_pb2.WEBHOOK_ENDPOINT_STATE_DISABLED}
_DELIVERY_STATES = {"PENDING": webhooks_pb2.WEBHOOK_DELIVERY_STATE_PENDING,
                    "DELIVERED": webhooks_pb2.WEBHOOK_DELIVERY_STATE_DELIVERED,
                    "FAILED": webhooks_pb2.WEBHOOK_DELIVERY_STATE_FAILED}


def event_type_names(values: list[int]) -> list[str]:
    """The domain names of requested event types. Raises InvalidInput for UNSPECIFIED or unknown values."""
    names = []
    for position, value in enumerate(values):
        if value not in _EVENTS:
            raise InvalidInput(f"event_types[{position}] is not an event type", reason="INVALID_WEBHOOK_ENDPOINT",
                               violations=[(f"event_types[{position}]", "unspecified or unknown event type")])
        names.append(_EVENTS[value])
    return names


def endpoint_to_proto(view: EndpointView) -> webhooks_pb2.WebhookEndpoint:
    return webhooks_pb2.WebhookEndpoint(
        id=view.id, url=view.url, event_types=[_EVENT_VALUES[e] for e in view.event_types if e in _EVENT_VALUES],
        description=view.description,
        state=_ENDPOINT_STATES.get(view.state, webhooks_pb2.WEBHOOK_ENDPOINT_STATE_UNSPECIFIED),
        disabled_reason=view.disabled_reason, failing_since=_ts(view.failing_since),
        create_time=_ts(view.create_time), secret_time=_ts(view.secret_time))


def delivery_to_proto(view: DeliveryView) -> webhooks_pb2.WebhookDelivery:
    return webhooks_pb2.WebhookDelivery(
        id=view.id, endpoint_id=view.endpoint_id,
        event_type=_EVENT_VALUES.get(view.event_type, webhooks_pb2.WEBHOOK_EVENT_TYPE_UNSPECIFIED),
        subject_id=view.subject_id,
        state=_DELIVERY_STATES.get(view.state, webhooks_pb2.WEBHOOK_DELIVERY_STATE_UNSPECIFIED),
        attempts=view.attempts, last_status_code=view.last_status_code, last_error=view.last_error,
        next_attempt_time=_ts(view.next_attempt_time), create_time=_ts(view.create_time),
        delivered_time=_ts(view.delivered_time), attempt_status_codes=list(view.attempt_status_codes))
