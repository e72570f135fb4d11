"""The Python SDK against the real server and a real Celery worker: accounts, analyze, results, reports,
health, token refresh and error details.

The SDK is synchronous and the live server shares this test's event loop, so each scenario runs in a
thread (asyncio.to_thread) while the loop keeps serving.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import grpc
import jwt
import pytest
from pixelcheck.v1 import auth_pb2, common_pb2

from pixelcheck.client import PixelCheckClient, PixelCheckError
from tests import images
from tests.e2e.flows import PASSWORD, bearer, failure_of, new_admin, unique_username
from tests.e2e.servers import LiveServer
from tests.processes import WorkerProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")


def new_account(client: PixelCheckClient, prefix: str = "sdk") -> auth_pb2.User:
    """Sign a fresh user up and in through the SDK."""
    username = unique_username(prefix)
    client.sign_up(username, f"{username}@example.org", PASSWORD)
    return client.sign_in(username, PASSWORD)


async def until_outdated(live_server: LiveServer, access_token: str, slack_seconds: float = 3.0) -> None:
    """Wait until the server refuses access_token with TOKEN_OUTDATED (within one refresh interval + slack)."""
    deadline = time.monotonic() + live_server.settings.revocation_refresh_seconds + slack_seconds
    while True:
        try:
            await live_server.auth.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), metadata=bearer(access_token))
        except grpc.aio.AioRpcError as error:
            assert failure_of(error).reason == "TOKEN_OUTDATED"
            return
        assert time.monotonic() < deadline, "the old access token is still accepted past the refresh bound"
        await asyncio.sleep(0.02)


async def grant_professional(live_server: LiveServer, user_id: str) -> None:
    admin = await new_admin(live_server)
    await live_server.auth.SetUserRoles(auth_pb2.SetUserRolesRequest(
        user_id=user_id, roles=[common_pb2.ROLE_USER, common_pb2.ROLE_PROFESSIONAL]), metadata=admin.metadata)


async def test_analyze_uploads_in_chunks_and_returns_a_verdict_that_get_and_list_agree_with(
        live_server: LiveServer, worker: WorkerProcess, tmp_path: Path) -> None:
    photo = tmp_path / "harbour.jpg"
    photo.write_bytes(images.jpeg(1600, 1200, seed=11, quality=97))
    assert photo.stat().st_size > 1024 * 1024 // 2

    def scenario() -> tuple:
        with PixelCheckClient(live_server.address) as client:
            new_account(client)
            sent: list[tuple[int, int]] = []
            stages: list[int] = []
            result = client.analyze(photo, progress=lambda done, total: sent.append((done, total)),
                                    on_event=lambda event: stages.append(event.stage))
            return result, sent, stages, client.get_result(result.image_id), list(client.iter_results())

    result, sent, stages, fetched, listed = await asyncio.to_thread(scenario)
    assert result.state == common_pb2.ANALYSIS_STATE_SUCCEEDED
    assert result.label in (common_pb2.LABEL_AI, common_pb2.LABEL_REAL)
    assert result.signals and result.explanation and result.filename == "harbour.jpg"
    assert sent[-1] == (photo.stat().st_size, photo.stat().st_size)
    assert stages[-1] == common_pb2.ANALYSIS_STAGE_DONE
    assert fetched == result
    assert [r.image_id for r in listed] == [result.image_id]


async def test_uploading_the_same_bytes_again_is_a_duplicate_with_the_same_image(
        live_server: LiveServer, worker: WorkerProcess) -> None:
    data = images.png(320, 240, seed=5)

    def scenario() -> tuple:
        with PixelCheckClient(live_server.address) as client:
            new_account(client)
            first = client.upload(data, "same.png", request_id="dup-1")
            again = client.upload(data, "same.png")
            return first, again

    first, again = await asyncio.to_thread(scenario)
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.image.id == first.image.id
    assert first.image.sha256 == hashlib.sha256(data).hexdigest()


async def test_server_refusals_arrive_as_pixelcheck_errors_with_reason_and_request_id(
        live_server: LiveServer) -> None:
    def scenario() -> tuple[PixelCheckError, PixelCheckError, PixelCheckError]:
        with PixelCheckClient(live_server.address) as client:
            errors = []
            for call in (lambda: client.sign_up("x", "not-an-email", "short"),
                         lambda: client.sign_in("nobody-" + unique_username(), "wrong password"),
                         lambda: (new_account(client), client.upload(images.gif(), "anim.gif"))):
                try:
                    call()
                except PixelCheckError as exc:
                    errors.append(exc)
            return tuple(errors)  # type: ignore[return-value]

    invalid, wrong, unsupported = await asyncio.to_thread(scenario)
    assert invalid.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in invalid.violations} >= {"username", "email", "password"}
    assert (wrong.code, wrong.reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")
    assert len(wrong.request_id) == 32
    assert unsupported.code == grpc.StatusCode.INVALID_ARGUMENT and unsupported.reason
    assert not any(e.unreachable for e in (invalid, wrong, unsupported))


async def test_expired_access_token_is_refreshed_and_the_call_succeeds(live_server: LiveServer) -> None:
    settings = live_server.settings

    def scenario() -> tuple[str, str, str, str]:
        with PixelCheckClient(live_server.address) as client:
            user = new_account(client)
            session = client.session
            assert session is not None
            # The same claims, expired ten minutes ago: what a client holds after a long pause.
            claims = jwt.decode(session.access_token, options={"verify_signature": False})
            now = int(time.time())
            claims.update(iat=now - 1200, nbf=now - 1200, exp=now - 600)
            stale = jwt.encode(claims, settings.jwt_secret, algorithm=settings.jwt_algorithm)
            old_refresh = session.refresh_token
            session.access_token = stale
            me = client.current_user()
            assert me.id == user.id
            return stale, client.session.access_token, old_refresh, client.session.refresh_token  # type: ignore[union-attr]

    stale, fresh_access, old_refresh, new_refresh = await asyncio.to_thread(scenario)
    assert fresh_access != stale
    assert new_refresh != old_refresh  # refreshing rotated the refresh token as well


async def test_professional_creates_and_downloads_a_verified_report(
        live_server: LiveServer, worker: WorkerProcess, tmp_path: Path) -> None:
    with PixelCheckClient(live_server.address) as client:
        user = await asyncio.to_thread(new_account, client, "pro")
        await grant_professional(live_server, user.id)

        def scenario() -> tuple:
            client.refresh()  # the new role is in the next access token
            result = client.analyze(images.jpeg(640, 480, seed=21), "evidence.jpg")
            report = client.create_report([result.image_id], format="csv", title="Case 21")
            ready = client.wait_for_report(report.id, timeout=60)
            return result, report, ready, client.download_report(report.id, tmp_path)

        result, report, ready, path = await asyncio.to_thread(scenario)
    assert report.state == common_pb2.REPORT_STATE_REQUESTED
    assert ready.state == common_pb2.REPORT_STATE_READY, ready.failure_reason
    assert path.parent == tmp_path and path.stat().st_size == ready.size_bytes
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ready.sha256
    assert result.image_id in path.read_text(encoding="utf-8")
    assert result.report_id  # a PROFESSIONAL's analysis also gets its automatic PDF


async def test_plain_user_cannot_create_reports(live_server: LiveServer) -> None:
    def scenario() -> PixelCheckError:
        with PixelCheckClient(live_server.address) as client:
            new_account(client)
            with pytest.raises(PixelCheckError) as caught:
                client.create_report(["0" * 32], format="pdf")
            return caught.value

    error = await asyncio.to_thread(scenario)
    assert (error.code, error.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")


async def test_health_reports_serving_overall_and_per_service(live_server: LiveServer) -> None:
    def scenario() -> tuple[str, str]:
        with PixelCheckClient(live_server.address) as client:
            return client.health(), client.health("pixelcheck.v1.IngestionService")

    assert await asyncio.to_thread(scenario) == ("SERVING", "SERVING")


async def test_the_sdk_refreshes_transparently_when_roles_change_under_its_token(live_server: LiveServer):
    client = PixelCheckClient(live_server.address)
    try:
        user = await asyncio.to_thread(new_account, client, "sdkroles")
        assert client.session is not None
        old_token = client.session.access_token
        await grant_professional(live_server, user.id)
        await until_outdated(live_server, old_token)  # the server now refuses the SDK's access token
        me = await asyncio.to_thread(client.current_user)
        assert set(me.roles) == {common_pb2.ROLE_USER, common_pb2.ROLE_PROFESSIONAL}
        assert client.session.access_token != old_token  # the SDK refreshed it by itself
    finally:
        client.close()
