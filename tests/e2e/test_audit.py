"""The audit trail through the real server: one event per call of every kind, shutdown without loss,
ListEvents filters and paging, ADMIN-only reads, tamper detection and usage statistics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from pixelcheck.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    auth_pb2,
    ingestion_pb2_grpc,
    results_pb2,
    results_pb2_grpc,
)
from sqlalchemy import func, select, text, update

from pixelcheck.analysis.models import Analysis
from pixelcheck.audit.models import AuditEvent
from tests.e2e.audit_fixtures import (
    eventually_stored,
    png_bytes,
    request_id,
    stored_events,
    with_request_id,
)
from tests.e2e.conftest import LiveServer, start_live_server
from tests.e2e.flows import SignedInUser, fails, new_admin, new_user
from tests.e2e.uploads import upload_messages

AUTH = "/pixelcheck.v1.AuthService/"
AUDIT = "/pixelcheck.v1.AuditService/"


def audit(server: LiveServer) -> audit_pb2_grpc.AuditServiceStub:
    return server.stub(audit_pb2_grpc.AuditServiceStub)


def stamp(value: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(value)
    return result


async def events_of(server: LiveServer, admin: SignedInUser, **filters: object) -> list[audit_pb2.AuditEvent]:
    """Every event matching filters, page by page."""
    await asyncio.to_thread(server.container.audit_recorder.flush)
    found: list[audit_pb2.AuditEvent] = []
    token = ""
    while True:
        page = await audit(server).ListEvents(audit_pb2.ListEventsRequest(page_token=token, **filters),
                                              metadata=admin.metadata)
        found.extend(page.events)
        token = page.next_page_token
        if not token:
            return found


# -- one event per call ------------------------------------------------------------------------------
async def test_unary_call_leaves_one_event_with_actor_code_peer_and_duration(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    rid = request_id()
    await live_server.auth.GetCurrentUser(auth_pb2.GetCurrentUserRequest(),
                                          metadata=with_request_id(user.metadata, rid))
    [event] = await eventually_stored(live_server.container, rid)  # written when the call has ended
    assert (event.method, event.actor_id, event.status_code) == (f"{AUTH}GetCurrentUser", user.user.id, "OK")
    assert event.peer.startswith("ipv4:127.0.0.1:") and event.duration_ms >= 0


async def test_unauthenticated_call_leaves_one_event_without_actor(live_server: LiveServer) -> None:
    rid = request_id()
    failure = await fails(live_server.auth.GetCurrentUser(auth_pb2.GetCurrentUserRequest(),
                                                          metadata=(("x-request-id", rid),)))
    assert (failure.code, failure.reason) == (grpc.StatusCode.UNAUTHENTICATED, "MISSING_CREDENTIALS")
    [event] = await eventually_stored(live_server.container, rid)  # written when the call has ended
    assert (event.actor_id, event.status_code) == ("", "UNAUTHENTICATED")


async def test_call_rejected_by_validation_leaves_one_event(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    rid = request_id()
    failure = await fails(audit(live_server).RecordEvent(
        audit_pb2.RecordEventRequest(action="Not An Action!", target="t" * 300),
        metadata=with_request_id(user.metadata, rid)))
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert set(failure.field_violations) == {"action", "target"}
    [event] = await eventually_stored(live_server.container, rid)  # written when the call has ended
    assert (event.actor_id, event.status_code) == (user.user.id, "INVALID_ARGUMENT")


async def test_client_streaming_upload_leaves_one_event(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    rid = request_id()
    stub = ingestion_pb2_grpc.IngestionServiceStub(live_server.channel)
    response = await stub.UploadImage(upload_messages(png_bytes(1), "noise.png", chunk=1000),
                                      metadata=with_request_id(user.metadata, rid))
    [event] = await eventually_stored(live_server.container, rid)  # written when the call has ended
    assert (event.method, event.actor_id, event.status_code) == (
        "/pixelcheck.v1.IngestionService/UploadImage", user.user.id, "OK")
    [accepted] = stored_events(live_server.container, rid, action="upload.accepted")
    assert accepted.target == f"image:{response.image.id}"


async def test_server_streaming_call_leaves_one_event_with_its_final_status(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    rid = request_id()
    stub = results_pb2_grpc.ResultsServiceStub(live_server.channel)
    call = stub.WatchAnalysis(results_pb2.WatchAnalysisRequest(image_id="f" * 32),
                              metadata=with_request_id(user.metadata, rid))
    failure = await fails(call.read())
    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "IMAGE_NOT_FOUND")
    [event] = await eventually_stored(live_server.container, rid)
    assert (event.method, event.status_code) == ("/pixelcheck.v1.ResultsService/WatchAnalysis", "NOT_FOUND")


async def test_client_cancelled_stream_leaves_one_cancelled_event(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    stub = ingestion_pb2_grpc.IngestionServiceStub(live_server.channel)
    image = (await stub.UploadImage(upload_messages(png_bytes(2), "queued.png"), metadata=user.metadata)).image
    rid = request_id()
    watch_stub = results_pb2_grpc.ResultsServiceStub(live_server.channel)
    call = watch_stub.WatchAnalysis(results_pb2.WatchAnalysisRequest(image_id=image.id),
                                    metadata=with_request_id(user.metadata, rid))
    first = await call.read()  # the snapshot: QUEUED, no worker in this test, so the stream stays open
    assert first.event.image_id == image.id
    call.cancel()
    events = await eventually_stored(live_server.container, rid)
    await asyncio.sleep(0.3)  # a second event would show up here
    assert len(stored_events(live_server.container, rid)) == 1
    assert (events[0].actor_id, events[0].status_code) == (user.user.id, "CANCELLED")


# -- shutdown ----------------------------------------------------------------------------------------
async def test_events_buffered_at_a_graceful_shutdown_are_written(live_server: LiveServer) -> None:
    # A timer that never fires on its own: only the shutdown flush can write these events.
    settings = live_server.settings.with_overrides(audit_flush_interval_seconds=3600.0, audit_batch_size=10_000)
    server = await start_live_server(settings)
    rids = [request_id() for _ in range(25)]
    try:
        user = await new_user(server.auth)
        await asyncio.gather(*(server.auth.GetCurrentUser(auth_pb2.GetCurrentUserRequest(),
                                                          metadata=with_request_id(user.metadata, rid))
                               for rid in rids))
        with server.container.read_sessions() as session:
            written_early = session.scalar(select(func.count()).where(AuditEvent.request_id.in_(rids)))
        assert written_early == 0
    finally:
        await server.stop()
    with live_server.container.read_sessions() as session:
        written = list(session.scalars(select(AuditEvent.request_id).where(AuditEvent.request_id.in_(rids))))
    assert sorted(written) == sorted(rids)


# -- reading the trail -------------------------------------------------------------------------------
async def test_non_admins_may_not_read_or_verify_the_trail(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    stub = audit(live_server)
    for call in (stub.ListEvents(audit_pb2.ListEventsRequest(), metadata=user.metadata),
                 stub.VerifyAuditLog(audit_pb2.VerifyAuditLogRequest(), metadata=user.metadata),
                 stub.GetUsageStatistics(audit_pb2.GetUsageStatisticsRequest(), metadata=user.metadata)):
        failure = await fails(call)
        assert (failure.code, failure.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")


async def test_record_event_returns_the_chained_event_with_the_caller_as_actor(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    payload = struct_pb2.Struct()
    payload.update({"case": "42", "amount": 3.5, "tags": ["a", "b"]})
    rid = request_id()
    response = await audit(live_server).RecordEvent(
        audit_pb2.RecordEventRequest(action="case.opened", target="case:42", payload=payload),
        metadata=with_request_id(user.metadata, rid))
    event = response.event
    assert (event.actor_id, event.action, event.target, event.request_id) == (
        user.user.id, "case.opened", "case:42", rid)
    assert event.payload == payload and len(event.hash) == 64 and len(event.prev_hash) == 64
    assert event.occurred_time.ToDatetime(tzinfo=UTC) > datetime.now(UTC) - timedelta(minutes=1)


async def test_record_event_refuses_the_reserved_action_and_large_payloads(live_server: LiveServer) -> None:
    user = await new_user(live_server.auth)
    big = struct_pb2.Struct()
    big.update({"blob": "x" * 17_000})
    failure = await fails(audit(live_server).RecordEvent(
        audit_pb2.RecordEventRequest(action="rpc", payload=big), metadata=user.metadata))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.field_violations) == {"action", "payload"}


async def test_list_events_filters_pages_newest_first(live_server: LiveServer) -> None:
    admin = await new_admin(live_server)
    user = await new_user(live_server.auth)
    before = datetime.now(UTC)
    for _ in range(7):
        await live_server.auth.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), metadata=user.metadata)
    await fails(audit(live_server).ListEvents(audit_pb2.ListEventsRequest(), metadata=user.metadata))
    await asyncio.to_thread(live_server.container.audit_recorder.flush)
    stub = audit(live_server)

    pages, token = [], ""
    while True:
        page = await stub.ListEvents(audit_pb2.ListEventsRequest(actor_id=user.user.id, action="rpc",
                                                                 page_size=3, page_token=token),
                                     metadata=admin.metadata)
        pages.append(page.events)
        token = page.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 2]
    ids = [e.id for p in pages for e in p]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 8
    assert [e.status_code for p in pages for e in p][0] == "PERMISSION_DENIED"

    denied = await events_of(live_server, admin, actor_id=user.user.id, status_code="PERMISSION_DENIED",
                             method=f"{AUDIT}ListEvents")
    assert len(denied) == 1 and denied[0].peer
    in_range = await events_of(live_server, admin, actor_id=user.user.id, action="rpc",
                               since=stamp(before), until=stamp(datetime.now(UTC)))
    assert len(in_range) == 8
    assert await events_of(live_server, admin, actor_id=user.user.id, action="rpc", until=stamp(before)) == []


async def test_list_events_rejects_bad_page_sizes_and_foreign_tokens(live_server: LiveServer) -> None:
    admin = await new_admin(live_server)
    stub = audit(live_server)
    failure = await fails(stub.ListEvents(audit_pb2.ListEventsRequest(page_size=-1), metadata=admin.metadata))
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_SIZE")
    page = await stub.ListEvents(audit_pb2.ListEventsRequest(page_size=1), metadata=admin.metadata)
    assert page.next_page_token
    for request in (audit_pb2.ListEventsRequest(page_token=page.next_page_token, action="rpc"),
                    audit_pb2.ListEventsRequest(page_token=page.next_page_token[:-2] + "AA"),
                    audit_pb2.ListEventsRequest(page_token="not-a-token")):
        failure = await fails(stub.ListEvents(request, metadata=admin.metadata))
        assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")


async def test_verify_audit_log_names_a_row_edited_behind_the_services_back(live_server: LiveServer) -> None:
    admin = await new_admin(live_server)
    user = await new_user(live_server.auth)
    stub = audit(live_server)
    recorded = (await stub.RecordEvent(audit_pb2.RecordEventRequest(action="case.closed", target="case:7"),
                                       metadata=user.metadata)).event
    await asyncio.to_thread(live_server.container.audit_recorder.flush)
    intact = await stub.VerifyAuditLog(audit_pb2.VerifyAuditLogRequest(), metadata=admin.metadata)
    assert intact.ok and intact.checked_count >= recorded.id and intact.first_broken_event_id == 0

    def set_target(value: str) -> None:
        with live_server.container.sessions.begin() as session:
            session.execute(text("UPDATE audit_events SET target = :t WHERE id = :id"),
                            {"t": value, "id": recorded.id})

    await asyncio.to_thread(set_target, "case:8")
    try:
        broken = await stub.VerifyAuditLog(audit_pb2.VerifyAuditLogRequest(), metadata=admin.metadata)
        assert (broken.ok, broken.first_broken_event_id) == (False, recorded.id)
    finally:
        await asyncio.to_thread(set_target, "case:7")  # later tests share this database
    assert (await stub.VerifyAuditLog(audit_pb2.VerifyAuditLogRequest(), metadata=admin.metadata)).ok


async def test_usage_statistics_agree_with_what_happened(live_server: LiveServer) -> None:
    since = datetime.now(UTC)
    admin = await new_admin(live_server)
    user = await new_user(live_server.auth)
    stub = ingestion_pb2_grpc.IngestionServiceStub(live_server.channel)
    images = [(await stub.UploadImage(upload_messages(png_bytes(100 + n), f"n{n}.png"),
                                      metadata=user.metadata)).image for n in range(4)]
    # The worker's part, done here so the numbers are exact: two verdicts, one failure, one still queued.
    outcomes = {images[0].id: ("SUCCEEDED", "AI", 120), images[1].id: ("SUCCEEDED", "REAL", 300),
                images[2].id: ("FAILED", None, None)}

    def finish_analyses() -> None:
        with live_server.container.sessions.begin() as session:
            for image_id, (state, label, duration_ms) in outcomes.items():
                session.execute(update(Analysis).where(Analysis.image_id == image_id).values(
                    state=state, label=label, duration_ms=duration_ms, finish_time=datetime.now(UTC)))

    await asyncio.to_thread(finish_analyses)
    await asyncio.to_thread(live_server.container.audit_recorder.flush)  # calls are audited in batches
    stats = await audit(live_server).GetUsageStatistics(
        audit_pb2.GetUsageStatisticsRequest(since=stamp(since)), metadata=admin.metadata)
    assert (stats.images_uploaded, stats.images_analysed, stats.failures) == (4, 2, 1)
    assert (stats.labelled_ai, stats.labelled_real) == (1, 1)
    assert (stats.mean_analysis_ms, stats.p95_analysis_ms) == (210.0, 300.0)
    assert stats.active_users == 1  # the user; the admin's first authenticated call is this one, in flight
    assert stats.reports_built == 0  # a USER's analyses get no automatic report
    await asyncio.to_thread(live_server.container.audit_recorder.flush)
    again = await audit(live_server).GetUsageStatistics(
        audit_pb2.GetUsageStatisticsRequest(since=stamp(since)), metadata=admin.metadata)
    assert again.active_users == 2
    before = await audit(live_server).GetUsageStatistics(
        audit_pb2.GetUsageStatisticsRequest(until=stamp(since)), metadata=admin.metadata)
    everything = await audit(live_server).GetUsageStatistics(
        audit_pb2.GetUsageStatisticsRequest(), metadata=admin.metadata)
    assert everything.images_uploaded == before.images_uploaded + 4  # the range really bounds the count


async def test_usage_statistics_refuse_an_empty_range(live_server: LiveServer) -> None:
    admin = await new_admin(live_server)
    now = stamp(datetime.now(UTC))
    failure = await fails(audit(live_server).GetUsageStatistics(
        audit_pb2.GetUsageStatisticsRequest(since=now, until=now), metadata=admin.metadata))
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
