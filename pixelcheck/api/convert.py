"""Proto ⇄ domain conversions for the gRPC edge, one section per service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from pixelcheck.audit.chain import ChainedEvent, Verification
from pixelcheck.audit.service import EventFilter, UsageStatistics
from pixelcheck.errors import InvalidInput
from pixelcheck.iam.service import Account
from pixelcheck.iam.service_tokens import ServiceTokenView
from pixelcheck.reports.service import ReportFile, ReportView
from pixelcheck.v1 import audit_pb2, auth_pb2, common_pb2, reports_pb2


def timestamp(value: datetime | None) -> Timestamp | None:
    """A Timestamp for an aware datetime, None for None (the field stays unset)."""
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


# -- reports ----------------------------------------------------------------------------------------
def report_format_name(value: int) -> str:
    """The domain format name ("PDF", "CSV", or "UNSPECIFIED") of a ReportFormat enum value."""
    if value not in common_pb2.ReportFormat.values():
        return "UNSPECIFIED"  # a value this server does not know, e.g. from a newer client
    return common_pb2.ReportFormat.Name(value).removeprefix("REPORT_FORMAT_")


def report_to_proto(report: ReportView) -> reports_pb2.Report:
    """A Report message for a report view."""
    return reports_pb2.Report(
        id=report.id,
        owner_id=report.owner_id,
        scope=common_pb2.ReportScope.Value(f"REPORT_SCOPE_{report.scope}"),
        format=common_pb2.ReportFormat.Value(f"REPORT_FORMAT_{report.format}"),
        state=common_pb2.ReportState.Value(f"REPORT_STATE_{report.state}"),
        title=report.title,
        image_ids=list(report.image_ids),
        filename=report.filename,
        size_bytes=report.size_bytes,
        create_time=timestamp(report.create_time),
        ready_time=timestamp(report.ready_time),
        failure_reason=report.failure_reason,
        deleted_image_ids=list(report.deleted_image_ids),
        sha256=report.sha256,
    )


def report_file_header(header: ReportFile) -> reports_pb2.DownloadReportResponse:
    """The first message of a download."""
    return reports_pb2.DownloadReportResponse(header=reports_pb2.ReportFileHeader(
        filename=header.filename, content_type=header.content_type, size_bytes=header.size_bytes,
        sha256=header.sha256))


# -- audit ------------------------------------------------------------------------------------------
def optional_time(message: Message, field: str) -> datetime | None:
    """The aware UTC datetime in a Timestamp field, None when the field is unset.

    Raises InvalidInput (INVALID_TIMESTAMP) for a Timestamp outside the years 1-9999.
    """
    if not message.HasField(field):
        return None
    try:
        return getattr(message, field).ToDatetime(tzinfo=UTC)
    except ValueError:  # seconds beyond years 1-9999 or nanos out of range: the client's mistake
        raise InvalidInput(f"{field} must be a valid time between the years 1 and 9999",
                           reason="INVALID_TIMESTAMP", violations=[(field, "out of range")]) from None


def struct_to_dict(value: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as a plain dict (numbers come back as floats, as JSON has them)."""
    return json_format.MessageToDict(value)


def event_filter(request: audit_pb2.ListEventsRequest) -> EventFilter:
    """The ListEvents filters of a request."""
    return EventFilter(actor_id=request.actor_id, action=request.action, method=request.method,
                       status_code=request.status_code, since=optional_time(request, "since"),
                       until=optional_time(request, "until"))


def audit_event_to_proto(event: ChainedEvent) -> audit_pb2.AuditEvent:
    """An AuditEvent message for a chained event."""
    c = event.content
    payload = struct_pb2.Struct()
    payload.update(c.payload)
    return audit_pb2.AuditEvent(
        id=event.id, actor_id=c.actor_id, action=c.action, target=c.target, method=c.method,
        status_code=c.status_code, peer=c.peer, request_id=c.request_id, duration_ms=c.duration_ms,
        payload=payload, occurred_time=timestamp(c.occurred_time), hash=event.hash, prev_hash=event.prev_hash)


def verification_to_proto(result: Verification) -> audit_pb2.VerifyAuditLogResponse:
    """The VerifyAuditLog response for a chain walk."""
    return audit_pb2.VerifyAuditLogResponse(ok=result.ok, checked_count=result.checked_count,
                                            first_broken_event_id=result.first_broken_event_id)


def usage_to_proto(stats: UsageStatistics) -> audit_pb2.GetUsageStatisticsResponse:
    """The GetUsageStatistics response."""
    return audit_pb2.GetUsageStatisticsResponse(
        images_analysed=stats.images_analysed, labelled_ai=stats.labelled_ai,
        labelled_real=stats.labelled_real, mean_analysis_ms=stats.mean_analysis_ms,
        p95_analysis_ms=stats.p95_analysis_ms, failures=stats.failures, active_users=stats.active_users,
        reports_built=stats.reports_built, images_uploaded=stats.images_uploaded)


# -- users ------------------------------------------------------------------------------------------
def role_name(value: int) -> str:
    """The domain role name ("USER", "ADMIN" …) of a Role enum value; "UNSPECIFIED" or the number for
    values that are not roles, so the use case reports them as unknown."""
    if value not in common_pb2.Role.values():
        return str(value)
    return common_pb2.Role.Name(value).removeprefix("ROLE_")


def user_to_proto(account: Account) -> auth_pb2.User:
    """A User message for an account (roles sorted, as the domain keeps them)."""
    return auth_pb2.User(
        id=account.id, username=account.username, email=account.email, display_name=account.display_name,
        roles=[common_pb2.Role.Value(f"ROLE_{name}") for name in account.roles],
        create_time=timestamp(account.create_time), disabled=account.disabled)


def service_token_to_proto(token: ServiceTokenView) -> auth_pb2.ServiceToken:
    """A ServiceToken message for a recorded service token."""
    return auth_pb2.ServiceToken(
        id=token.id, name=token.name, principal_id=token.principal_id, issued_by=token.issued_by,
        create_time=timestamp(token.create_time), expire_time=timestamp(token.expire_time),
        last_used_time=timestamp(token.last_used_time), revoke_time=timestamp(token.revoke_time),
        revoked_by=token.revoked_by)
