"""WebhooksService through real stubs, a real Celery worker and a real local HTTP receiver: registration rules,
Standard Webhooks deliveries verified with the spec's reference library, retries after receiver failures
under one webhook-id, secret rotation, disabling an endpoint that keeps failing, and a hanging receiver that
holds up only its own deliveries.

The module's server lets 127.0.0.3/32 in (the receiver listens there) and uses short retry settings: the
first retry after 0.2-0.4 s, a 1 s attempt timeout and a 6 s retry window.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from pixelcheck.v1 import (
    auth_pb2,
    common_pb2,
    reports_pb2,
    reports_pb2_grpc,
    results_pb2,
    webhooks_pb2,
    webhooks_pb2_grpc,
)
from standardwebhooks import Webhook

from pixelcheck.client import PixelCheckClient
from pixelcheck.settings import Settings
from tests import images, videos
from tests.e2e.flows import PASSWORD, SignedInUser, fails, new_admin, new_user, sign_in, unique_username
from tests.e2e.readme import run_grpcurl_script, section_sh_block
from tests.e2e.servers import LiveServer
from tests.e2e.test_cli_client import signed_in_cli
from tests.e2e.uploads import upload, watch
from tests.image_web_server import ImageWebServer, ReceivedRequest, Script
from tests.processes import WorkerProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")

RECEIVER_HOST = "127.0.0.3"
SUCCEEDED = webhooks_pb2.WEBHOOK_EVENT_TYPE_ANALYSIS_SUCCEEDED
REPORT_READY = webhooks_pb2.WEBHOOK_EVENT_TYPE_REPORT_READY


@pytest.fixture(scope="module")
def server_settings(base_settings: Settings, migrated_database_url: str) -> Settings:
    return base_settings.with_overrides(
        signin_max_failures=10_000, signin_address_max_failures=10_000, url_fetch_allow=f"{RECEIVER_HOST}/32",
        webhook_retry_base_seconds=0.2, webhook_retry_max_delay_seconds=1.0, webhook_retry_window_seconds=6,
        webhook_timeout_seconds=1.0, webhook_connect_timeout_seconds=1.0, webhook_lease_margin_seconds=1.0,
        webhook_max_in_flight=2, webhook_worker_concurrency=6)


@pytest.fixture(scope="module")
def worker(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """An inference worker (one slot, as `scripts/run` starts it) and a webhooks worker with 6 threads: enough
    for a hanging endpoint's 2 slots and everything else."""
    logs = tmp_path_factory.mktemp("workers")
    webhooks = WorkerProcess(live_server.settings, logs / "webhooks.log", name="webhooks", webhooks=True).start()
    try:
        process = WorkerProcess(live_server.settings, logs / "worker.log").start()
        try:
            yield process
        finally:
            process.stop()
    finally:
        webhooks.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def receiver() -> AsyncIterator[ImageWebServer]:
    server = await ImageWebServer(RECEIVER_HOST).start()
    yield server
    await server.stop()


@pytest.fixture
def route(receiver: ImageWebServer) -> Callable[..., tuple[str, Script]]:
    """route(*answers) -> (a fresh URL on the receiver, its Script)."""

    def make(*answers: int | str) -> tuple[str, Script]:
        # Random, never reused: a late retry to an earlier test's endpoint must not land on this one.
        path = f"/hooks/{secrets.token_hex(8)}"
        script = Script(*answers)
        receiver.routes[path] = script
        return receiver.url(path), script

    return make


def stub(server: LiveServer) -> webhooks_pb2_grpc.WebhooksServiceStub:
    return webhooks_pb2_grpc.WebhooksServiceStub(server.channel)


async def register(server: LiveServer, user: SignedInUser, url: str, *events: int
                   ) -> webhooks_pb2.CreateWebhookEndpointResponse:
    return await stub(server).CreateWebhookEndpoint(webhooks_pb2.CreateWebhookEndpointRequest(
        url=url, event_types=list(events) or [SUCCEEDED], description="newsroom queue"), metadata=user.metadata)


def received(receiver: ImageWebServer, url: str) -> list[ReceivedRequest]:
    path = url.split(str(receiver.port), 1)[1]
    return [r for r in receiver.requests if r.path == path]


async def deliveries(server: LiveServer, user: SignedInUser, endpoint_id: str) -> list[webhooks_pb2.WebhookDelivery]:
    page = await stub(server).ListWebhookDeliveries(webhooks_pb2.ListWebhookDeliveriesRequest(
        endpoint_id=endpoint_id), metadata=user.metadata)
    return list(page.deliveries)


async def settled(server: LiveServer, user: SignedInUser, endpoint_id: str, count: int = 1,
                  timeout: float = 60) -> list[webhooks_pb2.WebhookDelivery]:
    """The endpoint's deliveries once `count` of them are no longer PENDING (polled, with a deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await deliveries(server, user, endpoint_id)
        done = [d for d in found if d.state != webhooks_pb2.WEBHOOK_DELIVERY_STATE_PENDING]
        if len(done) >= count:
            return found
        assert loop.time() < deadline, f"deliveries still pending: {found}"
        await asyncio.sleep(0.1)


def verified(secret: str, request: ReceivedRequest) -> dict:
    """The body, after the reference library checked the signature (it raises otherwise)."""
    return Webhook(secret).verify(request.body, request.headers)  # type: ignore[no-any-return]


# -- registration -----------------------------------------------------------------------------------------
async def test_an_endpoint_is_registered_with_a_secret_shown_only_once(live_server: LiveServer, route) -> None:  # type: ignore[no-untyped-def]
    user = await new_user(live_server.auth)
    url, _ = route(200)
    created = await register(live_server, user, url, SUCCEEDED, REPORT_READY)
    assert created.secret.startswith("whsec_") and created.endpoint.url == url
    assert created.endpoint.state == webhooks_pb2.WEBHOOK_ENDPOINT_STATE_ENABLED
    assert list(created.endpoint.event_types) == [SUCCEEDED, REPORT_READY]
    listed = await stub(live_server).ListWebhookEndpoints(webhooks_pb2.ListWebhookEndpointsRequest(),
                                                          metadata=user.metadata)
    assert [e.id for e in listed.endpoints] == [created.endpoint.id]
    assert created.secret not in str(listed)
    other = await new_user(live_server.auth)
    failure = await fails(stub(live_server).ListWebhookDeliveries(webhooks_pb2.ListWebhookDeliveriesRequest(
        endpoint_id=created.endpoint.id), metadata=other.metadata))
    assert failure.code == grpc.StatusCode.NOT_FOUND and failure.reason == "WEBHOOK_ENDPOINT_NOT_FOUND"
    await stub(live_server).DeleteWebhookEndpoint(webhooks_pb2.DeleteWebhookEndpointRequest(
        endpoint_id=created.endpoint.id), metadata=user.metadata)
    assert not (await stub(live_server).ListWebhookEndpoints(webhooks_pb2.ListWebhookEndpointsRequest(),
                                                             metadata=user.metadata)).endpoints


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1:9/hook", "URL_ADDRESS_NOT_ALLOWED"), ("http://169.254.169.254/hook", "URL_ADDRESS_NOT_ALLOWED"),
    ("http://[::ffff:10.0.0.1]/hook", "URL_ADDRESS_NOT_ALLOWED"), ("ftp://127.0.0.3/hook", "URL_SCHEME_NOT_ALLOWED"),
    ("http://u:p@127.0.0.3/hook", "URL_CREDENTIALS_NOT_ALLOWED"), ("not a url", "URL_INVALID")])
async def test_endpoint_targets_obey_the_import_address_rules(live_server: LiveServer, url: str, reason: str) -> None:
    user = await new_user(live_server.auth)
    failure = await fails(register(live_server, user, url))
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, reason)


async def test_endpoint_without_event_types_or_with_unspecified_ones_is_invalid(live_server: LiveServer,
                                                                                route) -> None:  # type: ignore[no-untyped-def]
    user = await new_user(live_server.auth)
    url, _ = route(200)
    for events in ([], [webhooks_pb2.WEBHOOK_EVENT_TYPE_UNSPECIFIED]):
        failure = await fails(stub(live_server).CreateWebhookEndpoint(webhooks_pb2.CreateWebhookEndpointRequest(
            url=url, event_types=events), metadata=user.metadata))
        assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.reason == "INVALID_WEBHOOK_ENDPOINT"
        assert any(f.startswith("event_types") for f in failure.field_violations)


# -- deliveries ----------------------------------------------------------------------------------------------
async def test_a_verdict_is_delivered_signed_per_standard_webhooks_with_the_results_fields(
        live_server: LiveServer, worker: WorkerProcess, receiver: ImageWebServer, route) -> None:  # type: ignore[no-untyped-def]
    user = await new_user(live_server.auth)
    url, _ = route(204)
    created = await register(live_server, user, url)
    image = (await upload(live_server.channel, user.metadata, images.jpeg(seed=61), "pier.jpg",
                          external_id="ticket-88")).image
    final = (await watch(live_server.channel, user.metadata, image.id))[-1].result

    [delivery] = await settled(live_server, user, created.endpoint.id)
    [request] = received(receiver, url)
    body = verified(created.secret, request)
    assert request.headers["webhook-id"] == f"msg_{delivery.id}" and request.method == "POST"
    assert body["type"] == "analysis.succeeded"
    data = body["data"]
    assert (data["image_id"], data["external_id"], data["filename"]) == (image.id, "ticket-88", "pier.jpg")
    assert data["label"] == common_pb2.Label.Name(final.label).removeprefix("LABEL_")
    assert data["probability_ai"] == pytest.approx(final.prob_ai, abs=1e-4)
    assert data["confidence_band"] == common_pb2.ConfidenceBand.Name(final.confidence_band).removeprefix(
        "CONFIDENCE_BAND_")
    assert data["model_version"] == final.model_version and data["summary"] == final.explanation
    assert "http" not in json.dumps(data)  # a link-free summary
    assert data["media_kind"] == "STILL" and "timeline" not in data
    assert delivery.state == webhooks_pb2.WEBHOOK_DELIVERY_STATE_DELIVERED
    assert (delivery.attempts, delivery.last_status_code, list(delivery.attempt_status_codes)) == (1, 204, [204])
    assert delivery.subject_id == image.id and delivery.HasField("delivered_time")


async def test_a_clips_verdict_is_delivered_with_its_media_kind_and_timeline(
        live_server: LiveServer, worker: WorkerProcess, receiver: ImageWebServer, route) -> None:  # type: ignore[no-untyped-def]
    user = await new_user(live_server.auth)
    url, _ = route(200)
    created = await register(live_server, user, url)
    clip = videos.clip("mp4-h264", seconds=3, fps=4, scenes=(0.0, 2.0), audio=True)
    image = (await upload(live_server.channel, user.metadata, clip, "harbour.mp4", external_id="clip-7")).image
    final = (await watch(live_server.channel, user.metadata, image.id))[-1].result
    assert final.media_kind == results_pb2.MEDIA_KIND_VIDEO

    [delivery] = await settled(live_server, user, created.endpoint.id)
    [request] = received(receiver, url)
    body = verified(created.secret, request)
    assert body["type"] == "analysis.succeeded" and delivery.subject_id == image.id
    data = body["data"]
    assert (data["image_id"], data["external_id"], data["filename"]) == (image.id, "clip-7", "harbour.mp4")
    assert data["label"] == common_pb2.Label.Name(final.label).removeprefix("LABEL_")
    assert data["probability_ai"] == pytest.approx(final.prob_ai, abs=1e-4)
    assert data["summary"] == final.explanation and data["media_kind"] == "VIDEO"
    timeline, expected = data["timeline"], final.timeline
    assert (timeline["duration_ms"], timeline["frames_in_file"], timeline["frames_read"], timeline["frames_skipped"],
            timeline["has_audio"]) == (expected.duration_ms, expected.frames_in_file, expected.frames_read,
                                       expected.frames_skipped, True)
    assert [(f["index"], f["time_ms"], f["label"]) for f in timeline["frames"]] == [
        (f.index, f.time_ms, common_pb2.Label.Name(f.label).removeprefix("LABEL_")) for f in expected.frames]
    assert [f["probability_ai"] for f in timeline["frames"]] == pytest.approx([f.prob_ai for f in expected.frames],
                                                                              abs=1e-4)
    assert [(s["start_ms"], s["end_ms"]) for s in timeline["ai_segments"]] == [
        (s.start_ms, s.end_ms) for s in expected.segments]


async def test_receiver_failures_are_retried_under_the_same_webhook_id_until_accepted(
        live_server: LiveServer, worker: WorkerProcess, receiver: ImageWebServer, route) -> None:  # type: ignore[no-untyped-def]
    user = await new_user(live_server.auth)
    url, _ = route(500, "hang", 200)
    created = await register(live_server, user, url)
    await upload(live_server.channel, user.metadata, images.jpeg(seed=62))

    [delivery] = await settled(live_server, user, created.endpoint.id)
    attempts = received(receiver, url)
    assert len(attempts) == 3 and len({r.headers["webhook-id"] for r in attempts}) == 1
    assert len({r.body for r in attempts}) == 1  # the same event, byte for byte
    for request in attempts:
        verified(created.secret, request)
    assert delivery.state == webhooks_pb2.WEBHOOK_DELIVERY_STATE_DELIVERED
    assert list(delivery.attempt_status_codes) == [500, 0, 200] and delivery.attempts == 3


async def test_after_a_rotation_both_secrets_verify_the_next_delivery(
        live_server: LiveServer, worker: WorkerProcess, receiver: ImageWebServer, route) -> None:  # type: ignore[no-untyped-def]
    user = await new_user(live_server.auth)
    url, _ = route(200)
    created = await register(live_server, user, url)
    rotated = await stub(live_server).RotateWebhookSecret(webhooks_pb2.RotateWebhookSecretRequest(
        endpoint_id=created.endpoint.id), metadata=user.metadata)
    assert rotated.secret != created.secret and rotated.secret.startswith("whsec_")
    await upload(live_server.channel, user.metadata, images.jpeg(seed=63))
    await settled(live_server, user, created.endpoint.id)
    [request] = received(receiver, url)
    assert verified(rotated.secret, request) == verified(created.secret, request)


async def test_an_endpoint_failing_for_the_whole_window_is_disabled_with_its_reason(
        live_server: LiveServer, worker: WorkerProcess, receiver: ImageWebServer, route) -> None:  # type: ignore[no-untyped-def]
    user = await new_user(live_server.auth)
    url, _ = route(503)
    created = await register(live_server, user, url)
    await upload(live_server.channel, user.metadata, images.jpeg(seed=64))

    [delivery] = await settled(live_server, user, created.endpoint.id, timeout=90)
    assert delivery.state == webhooks_pb2.WEBHOOK_DELIVERY_STATE_FAILED and delivery.attempts >= 3
    assert set(delivery.attempt_status_codes) == {503}
    [endpoint] = (await stub(live_server).ListWebhookEndpoints(webhooks_pb2.ListWebhookEndpointsRequest(),
                                                               metadata=user.metadata)).endpoints
    assert endpoint.state == webhooks_pb2.WEBHOOK_ENDPOINT_STATE_DISABLED
    assert "Every delivery failed" in endpoint.disabled_reason and "HTTP 503" in endpoint.disabled_reason
    asked = len(received(receiver, url))
    await upload(live_server.channel, user.metadata, images.jpeg(seed=65))  # a disabled endpoint gets nothing
    assert len(await deliveries(live_server, user, created.endpoint.id)) == 1 and len(received(receiver, url)) == asked


async def test_a_hanging_receiver_holds_only_its_own_slots_and_others_are_delivered(
        live_server: LiveServer, worker: WorkerProcess, receiver: ImageWebServer, route) -> None:  # type: ignore[no-untyped-def]
    hanging_user, prompt_user = await new_user(live_server.auth), await new_user(live_server.auth)
    hanging_url, hanging = route("hang")
    prompt_url, _ = route(200)
    await register(live_server, hanging_user, hanging_url)
    prompt = await register(live_server, prompt_user, prompt_url)
    for seed in range(70, 74):
        await upload(live_server.channel, hanging_user.metadata, images.jpeg(160, 120, seed=seed))
    for seed in range(74, 77):
        await upload(live_server.channel, prompt_user.metadata, images.jpeg(160, 120, seed=seed))
    found = await settled(live_server, prompt_user, prompt.endpoint.id, count=3)
    assert all(d.state == webhooks_pb2.WEBHOOK_DELIVERY_STATE_DELIVERED for d in found)
    assert hanging.most_open <= 2  # webhook_max_in_flight


async def test_report_ready_is_delivered_to_a_professional(
        live_server: LiveServer, worker: WorkerProcess, receiver: ImageWebServer, route) -> None:  # type: ignore[no-untyped-def]
    admin = await new_admin(live_server)
    user = await new_user(live_server.auth, "pro")
    await live_server.auth.SetUserRoles(auth_pb2.SetUserRolesRequest(
        user_id=user.user.id, roles=[common_pb2.ROLE_USER, common_pb2.ROLE_PROFESSIONAL]), metadata=admin.metadata)
    signed_in = await sign_in(live_server.auth, user.username)
    pro = SignedInUser(user.username, user.password, signed_in.user, signed_in.access_token, signed_in.refresh_token)
    url, _ = route(200)
    created = await register(live_server, pro, url, REPORT_READY)
    image = (await upload(live_server.channel, pro.metadata, images.jpeg(seed=66))).image
    await watch(live_server.channel, pro.metadata, image.id)
    report = (await reports_pb2_grpc.ReportsServiceStub(live_server.channel).CreateReport(
        reports_pb2.CreateReportRequest(image_ids=[image.id], format=common_pb2.REPORT_FORMAT_CSV, title="Hooked"),
        metadata=pro.metadata)).report
    found = await settled(live_server, pro, created.endpoint.id, count=2)  # the automatic PDF and the CSV
    bodies = [verified(created.secret, r) for r in received(receiver, url)]
    assert report.id in {d.subject_id for d in found}
    [event] = [b for b in bodies if b["data"]["report_id"] == report.id]
    assert event["type"] == "report.ready" and event["data"]["image_ids"] == [image.id]
    assert event["data"]["format"] == "CSV" and event["data"]["filename"].endswith(".csv")



# -- SDK and CLI ----------------------------------------------------------------------------------------------
async def test_sdk_manages_endpoints_and_reads_deliveries(live_server: LiveServer, worker: WorkerProcess,
                                                          receiver: ImageWebServer, route) -> None:  # type: ignore[no-untyped-def]
    url, _ = route(200)
    photo = images.jpeg(seed=67)

    def scenario() -> tuple:  # type: ignore[type-arg]
        with PixelCheckClient(live_server.address) as client:
            username = unique_username("sdkhook")
            client.sign_up(username, f"{username}@example.org", PASSWORD)
            client.sign_in(username, PASSWORD)
            created = client.create_webhook(url, ["analysis.succeeded", "report.ready"], description="sdk")
            result = client.analyze(photo, "sdk.jpg")
            rotated = client.rotate_webhook_secret(created.endpoint.id)
            listed = client.list_webhooks()
            deadline = time.monotonic() + 60
            while not (page := client.webhook_deliveries(created.endpoint.id)).deliveries or \
                    page.deliveries[0].state == webhooks_pb2.WEBHOOK_DELIVERY_STATE_PENDING:
                assert time.monotonic() < deadline, page
                time.sleep(0.1)
            client.delete_webhook(created.endpoint.id)
            return created, result, rotated, listed, page, client.list_webhooks()

    created, result, rotated, listed, page, after = await asyncio.to_thread(scenario)
    assert [e.id for e in listed] == [created.endpoint.id] and rotated.secret != created.secret
    assert list(created.endpoint.event_types) == [SUCCEEDED, REPORT_READY]
    [delivery] = page.deliveries
    assert delivery.subject_id == result.image_id and delivery.state == webhooks_pb2.WEBHOOK_DELIVERY_STATE_DELIVERED
    assert after == []


async def test_cli_registers_an_endpoint_prints_the_secret_once_and_shows_deliveries(
        live_server: LiveServer, worker: WorkerProcess, receiver: ImageWebServer, route, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli, _, _ = await signed_in_cli(live_server, tmp_path, "clihook")
    url, _ = route(200)
    created = await cli("client", "webhook", "create", url, "--event", "analysis.succeeded", "--json")
    assert created.code == 0, created.stderr
    secret, endpoint_id = created.json()["secret"], created.json()["endpoint"]["id"]  # type: ignore[index]
    assert secret.startswith("whsec_")
    listed = await cli("client", "webhook", "list")
    assert listed.code == 0 and endpoint_id in listed.stdout and "ENABLED" in listed.stdout
    assert secret not in listed.stdout
    photo = tmp_path / "cli.jpg"
    photo.write_bytes(images.jpeg(seed=68))
    assert (await cli("client", "upload", str(photo), "--watch")).code == 0
    await receiver.wait_for(lambda: len(received(receiver, url)) == 1)
    verified(secret, received(receiver, url)[0])
    shown = await cli("client", "webhook", "deliveries", endpoint_id)
    assert shown.code == 0 and "ANALYSIS_SUCCEEDED" in shown.stdout
    refused = await cli("client", "webhook", "create", "http://10.1.1.1/hook")
    assert refused.code == 1 and "URL_ADDRESS_NOT_ALLOWED" in refused.stderr


# -- the README -------------------------------------------------------------------------------------------
async def test_the_readme_webhook_commands_run_as_written(live_server: LiveServer, worker: WorkerProcess,
                                                          receiver: ImageWebServer, route, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, _ = route(200)
    script = section_sh_block("## Webhooks: told when it is done").replace(
        "ADDR=127.0.0.1:50051", f"ADDR={live_server.address}").replace("https://hooks.example.org/pixelcheck", url)
    user = await new_user(live_server.auth)
    created, listed = await run_grpcurl_script(script, token=user.access_token, cwd=tmp_path)
    assert created["secret"].startswith("whsec_") and created["endpoint"]["url"] == url
    assert listed == {}  # no deliveries yet
    await upload(live_server.channel, user.metadata, images.jpeg(seed=69))
    await receiver.wait_for(lambda: len(received(receiver, url)) == 1)
    assert verified(created["secret"], received(receiver, url)[0])["type"] == "analysis.succeeded"
