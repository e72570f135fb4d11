"""ImportImage through real stubs against real local HTTP servers: the happy path to a verdict, external ids,
dedupe and replay, the rate limit, and the SSRF suite (every hostile URL refused with its reason, nothing
stored, an audit event left).

The module's server lets exactly 127.0.0.3/32 in (PIXELCHECK_URL_FETCH_ALLOW): the image server listens
there. A second server on 127.0.0.1 stands for an internal service; it must never see a request. Host names
go to a fake DNS (the fetcher's resolver is replaced) so that no query leaves the machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from ipaddress import ip_address
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from pixelcheck.v1 import common_pb2, ingestion_pb2, ingestion_pb2_grpc, results_pb2, results_pb2_grpc

from pixelcheck.client import PixelCheckClient, PixelCheckError
from pixelcheck.ingestion.url_fetch import USER_AGENT, system_resolve
from pixelcheck.ingestion.url_policy import IPAddress
from pixelcheck.settings import Settings
from tests import images
from tests.e2e.flows import PASSWORD, SignedInUser, fails, new_user, unique_username
from tests.e2e.readme import run_grpcurl_script, section_sh_block
from tests.e2e.servers import LiveServer
from tests.e2e.test_cli_client import signed_in_cli
from tests.e2e.test_node_client import node, node_modules, run  # noqa: F401  (fixtures)
from tests.e2e.test_upload_rejections import rejection_events as rejections
from tests.e2e.test_upload_rejections import stored_images
from tests.e2e.uploads import state_name, upload, watch
from tests.image_web_server import Exchange, ImageWebServer, gzip_body
from tests.processes import WorkerProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")

ALLOWED_HOST = "127.0.0.3"
LIMIT_BYTES = 1024 * 1024
RATE_LIMIT = 8
PHOTO = images.jpeg(640, 480, seed=31)
OTHER_PHOTO = images.jpeg(320, 240, seed=32)
IPHONE_PHOTO = images.heic(640, 480, seed=33, exif=images.apple_exif("iPhone 15 Pro"))


@pytest.fixture(scope="module")
def server_settings(base_settings: Settings, migrated_database_url: str) -> Settings:
    return base_settings.with_overrides(
        signin_max_failures=10_000, signin_address_max_failures=10_000, url_fetch_allow=f"{ALLOWED_HOST}/32",
        upload_max_bytes=LIMIT_BYTES, url_fetch_timeout_seconds=3.0, url_fetch_read_timeout_seconds=1.5,
        url_fetch_connect_timeout_seconds=1.5, url_import_rate_limit=RATE_LIMIT,
        url_import_rate_window_seconds=3600)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def internal() -> AsyncIterator[ImageWebServer]:
    """Stands for an internal service on loopback: answers everything with an image, must never be asked."""
    server = ImageWebServer("127.0.0.1")

    async def secret(exchange: Exchange) -> None:
        await exchange.respond(200, OTHER_PHOTO)

    server.routes = {"/photo.jpg": secret, "/latest/meta-data/": secret}
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def web(internal: ImageWebServer) -> AsyncIterator[ImageWebServer]:
    server = ImageWebServer(ALLOWED_HOST)

    async def photo(x: Exchange) -> None:
        await x.respond(200, PHOTO, "image/jpeg", {"Set-Cookie": "session=abc; Path=/"})

    async def other(x: Exchange) -> None:
        await x.respond(200, OTHER_PHOTO, "image/jpeg; charset=binary")

    async def hop(x: Exchange) -> None:
        n = int(x.request.path.rsplit("/", 1)[1])
        await x.redirect("/photo.jpg" if n == 0 else f"/hop/{n - 1}", headers={"Set-Cookie": "tracking=1"})

    async def drip(x: Exchange) -> None:
        async def pause() -> None:  # a hostile server's pace, not a test waiting: slower than any deadline
            await asyncio.sleep(0.2)
        await x.stream_forever(b"\xff", pause=pause)

    async def mislabelled(x: Exchange) -> None:
        await x.respond(200, b"<html><body>not an image</body></html>", "image/png")

    routes = {
        "/photo.jpg": photo,
        "/other.jpg": other,
        "/IMG_1024.HEIC": lambda x: x.respond(200, IPHONE_PHOTO, "image/heic"),
        "/to-internal": lambda x: x.redirect(internal.url("/photo.jpg")),
        "/to-metadata": lambda x: x.redirect("http://169.254.169.254/latest/meta-data/"),
        "/to-loopback-name": lambda x: x.redirect(f"http://localhost:{internal.port}/photo.jpg"),
        "/to-file": lambda x: x.redirect("file:///etc/passwd"),
        "/to-credentials": lambda x: x.redirect(f"http://admin:secret@{ALLOWED_HOST}:{server.port}/photo.jpg"),
        "/too-large": lambda x: x.respond(200, b"", declared_length=LIMIT_BYTES + 1),
        "/endless": lambda x: x.stream_forever(b"\xff" * 65536),
        "/drip": drip,
        "/hang": lambda x: server.hang(),
        "/page.html": lambda x: x.respond(200, b"<html></html>", "text/html; charset=utf-8"),
        "/mislabelled.png": mislabelled,
        "/gone.jpg": lambda x: x.respond(404, b"missing", "text/plain"),
        "/broken.jpg": lambda x: x.respond(500, b"oops", "text/plain"),
        "/gzipped.jpg": lambda x: x.respond(200, gzip_body(PHOTO), "image/jpeg", {"Content-Encoding": "gzip"}),
    }
    for n in range(5):
        routes[f"/hop/{n}"] = hop
    server.routes = routes
    await server.start()
    yield server
    await server.stop()


class FakeDns:
    """Answers for made-up names; IP literals and localhost go to the system resolver (no network)."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str]]] = {}  # name -> one answer per lookup (the last repeats)
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append(host)
        if host in self.answers:
            sequence = self.answers[host]
            answer = sequence.pop(0) if len(sequence) > 1 else sequence[0]
            return [ip_address(a) for a in answer]
        if host.endswith((".example.com", ".test")):
            raise OSError("no such name")
        return await system_resolve(host, port)


@pytest.fixture
def dns(live_server: LiveServer) -> FakeDns:
    fake = FakeDns()
    fetcher = live_server.container.url_imports.fetcher
    fetcher.resolve = fake
    return fake


def ingestion(server: LiveServer) -> ingestion_pb2_grpc.IngestionServiceStub:
    return ingestion_pb2_grpc.IngestionServiceStub(server.channel)


async def import_url(server: LiveServer, user: SignedInUser, url: str, **fields: str
                     ) -> ingestion_pb2.ImportImageResponse:
    return await ingestion(server).ImportImage(ingestion_pb2.ImportImageRequest(url=url, **fields),
                                               metadata=user.metadata)


# -- the happy path ---------------------------------------------------------------------------------------
async def test_imported_url_is_analysed_to_a_verdict_with_its_external_id_everywhere(
        live_server: LiveServer, worker: WorkerProcess, web: ImageWebServer, dns: FakeDns) -> None:
    user = await new_user(live_server.auth)
    response = await import_url(live_server, user, web.url("/photo.jpg"), external_id="case-4711/a")
    image = response.image
    assert not response.duplicate and image.analysis_state == common_pb2.ANALYSIS_STATE_QUEUED
    assert (image.filename, image.content_type, image.width, image.height) == ("photo.jpg", "image/jpeg", 640, 480)
    assert image.size_bytes == len(PHOTO) and image.external_id == "case-4711/a"
    assert image.source_url == web.url("/photo.jpg")

    events = await watch(live_server.channel, user.metadata, image.id)
    assert state_name(events[-1].state) == "SUCCEEDED"
    assert events[-1].result.external_id == "case-4711/a"
    assert events[-1].result.label in (common_pb2.LABEL_AI, common_pb2.LABEL_REAL)

    got = (await ingestion(live_server).GetImage(ingestion_pb2.GetImageRequest(image_id=image.id),
                                                 metadata=user.metadata)).image
    assert (got.external_id, got.source_url) == ("case-4711/a", web.url("/photo.jpg"))
    request = web.requests[-1]
    assert request.headers["user-agent"] == USER_AGENT and "cookie" not in request.headers
    assert request.headers["accept-encoding"] == "identity"


async def test_an_imported_iphone_heic_is_analysed_with_its_camera_exif(
        live_server: LiveServer, worker: WorkerProcess, web: ImageWebServer, dns: FakeDns) -> None:
    user = await new_user(live_server.auth)
    image = (await import_url(live_server, user, web.url("/IMG_1024.HEIC"))).image
    assert (image.filename, image.content_type, image.width, image.height) == ("IMG_1024.HEIC", "image/heic", 640, 480)
    events = await watch(live_server.channel, user.metadata, image.id)
    result = events[-1].result
    assert state_name(events[-1].state) == "SUCCEEDED" and result.image_facts.format == "HEIF"
    assert result.image_facts.has_exif
    assert (result.provenance.camera_make, result.provenance.camera_model) == ("Apple", "iPhone 15 Pro")


async def test_external_id_filters_list_images_and_list_results(live_server: LiveServer, web: ImageWebServer,
                                                                dns: FakeDns) -> None:
    user = await new_user(live_server.auth)
    first = (await import_url(live_server, user, web.url("/photo.jpg"), external_id="batch-1")).image
    await upload(live_server.channel, user.metadata, OTHER_PHOTO, "second.jpg")
    listed = await ingestion(live_server).ListImages(ingestion_pb2.ListImagesRequest(external_id="batch-1"),
                                                     metadata=user.metadata)
    assert [i.id for i in listed.images] == [first.id] and listed.total_size == 1
    everything = await ingestion(live_server).ListImages(ingestion_pb2.ListImagesRequest(), metadata=user.metadata)
    assert everything.total_size == 2
    results = await results_pb2_grpc.ResultsServiceStub(live_server.channel).ListResults(
        results_pb2.ListResultsRequest(external_id="batch-1"), metadata=user.metadata)
    assert [r.image_id for r in results.results] == [first.id] and results.results[0].external_id == "batch-1"


async def test_reimporting_the_same_bytes_is_a_duplicate_and_an_upload_of_them_too(
        live_server: LiveServer, web: ImageWebServer, dns: FakeDns) -> None:
    user = await new_user(live_server.auth)
    first = await import_url(live_server, user, web.url("/photo.jpg"))
    again = await import_url(live_server, user, web.url("/hop/1"))  # the same bytes behind two redirects
    uploaded = await upload(live_server.channel, user.metadata, PHOTO, "mine.jpg")
    assert again.duplicate and again.image.id == first.image.id
    assert uploaded.duplicate and uploaded.image.id == first.image.id
    assert stored_images(live_server, user) == 1


async def test_a_replayed_request_id_returns_the_first_response_without_fetching_again(
        live_server: LiveServer, web: ImageWebServer, dns: FakeDns) -> None:
    user = await new_user(live_server.auth)
    first = await import_url(live_server, user, web.url("/other.jpg"), request_id="import-1", filename="cat.jpg")
    fetched = web.paths_requested().count("/other.jpg")
    replay = await import_url(live_server, user, web.url("/other.jpg"), request_id="import-1")
    # The same image; its analysis state is read now (a worker may have started on it meanwhile).
    replay.image.analysis_state = first.image.analysis_state
    assert replay.image == first.image and not replay.duplicate
    assert web.paths_requested().count("/other.jpg") == fetched
    assert first.image.filename == "cat.jpg"


async def test_bad_fields_are_invalid_with_one_violation_each(live_server: LiveServer, dns: FakeDns) -> None:
    user = await new_user(live_server.auth)
    failure = await fails(import_url(live_server, user, "http://127.0.0.3/x.jpg", external_id="has space",
                                     request_id="r" * 129))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.reason == "INVALID_IMPORT_REQUEST"
    assert set(failure.field_violations) == {"external_id", "request_id"}
    upload_failure = await fails(upload(live_server.channel, user.metadata, PHOTO, external_id="x" * 129))
    assert upload_failure.reason == "INVALID_METADATA" and "metadata.external_id" in upload_failure.field_violations
    filter_failure = await fails(ingestion(live_server).ListImages(
        ingestion_pb2.ListImagesRequest(external_id="tab\there"), metadata=user.metadata))
    assert filter_failure.code == grpc.StatusCode.INVALID_ARGUMENT and filter_failure.reason == "INVALID_FILTER"


async def test_imports_over_the_per_user_rate_are_resource_exhausted_with_retry_info(
        live_server: LiveServer, dns: FakeDns) -> None:
    for _ in range(3):  # a window boundary in the middle of the burst resets the count: try again
        user = await new_user(live_server.auth)
        window = int(time.time() // 3600)
        refusals = [await fails(import_url(live_server, user, "http://10.0.0.1/x.jpg")) for _ in range(RATE_LIMIT + 1)]
        if int(time.time() // 3600) == window:
            break
    assert {f.reason for f in refusals[:RATE_LIMIT]} == {"URL_ADDRESS_NOT_ALLOWED"}
    last = refusals[RATE_LIMIT]
    assert last.code == grpc.StatusCode.RESOURCE_EXHAUSTED and last.reason == "URL_IMPORT_RATE_LIMITED"
    assert last.retry_delay_seconds is not None and 0 < last.retry_delay_seconds <= 3600
    other = await new_user(live_server.auth)  # per user: someone else is not affected
    assert (await fails(import_url(live_server, other, "http://10.0.0.1/x.jpg"))).reason == "URL_ADDRESS_NOT_ALLOWED"


# -- SDK and CLI ----------------------------------------------------------------------------------------------
async def test_sdk_import_url_returns_the_image_and_raises_the_refusal_reason(
        live_server: LiveServer, web: ImageWebServer, dns: FakeDns) -> None:
    def scenario() -> tuple[object, PixelCheckError]:
        with PixelCheckClient(live_server.address) as client:
            username = unique_username("sdk")
            client.sign_up(username, f"{username}@example.org", PASSWORD)
            client.sign_in(username, PASSWORD)
            imported = client.import_url(web.url("/other.jpg"), external_id="sdk-1", request_id="sdk-req-1")
            listed = client.list_results(external_id="sdk-1")
            try:
                client.import_url("http://169.254.169.254/latest/meta-data/")
            except PixelCheckError as error:
                return (imported, listed), error
            raise AssertionError("the metadata address was imported")

    (imported, listed), error = await asyncio.to_thread(scenario)
    assert imported.image.external_id == "sdk-1" and imported.image.size_bytes == len(OTHER_PHOTO)  # type: ignore[attr-defined]
    assert [r.image_id for r in listed.results] == [imported.image.id]  # type: ignore[attr-defined]
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and error.reason == "URL_ADDRESS_NOT_ALLOWED"


async def test_cli_upload_of_a_url_imports_it_and_waits_for_the_verdict(
        live_server: LiveServer, worker: WorkerProcess, web: ImageWebServer, dns: FakeDns, tmp_path: Path) -> None:
    cli, _, user_id = await signed_in_cli(live_server, tmp_path)
    run = await cli("client", "upload", web.url("/photo.jpg"), "--external-id", "cli-7", "--watch", "--json")
    assert run.code == 0, run.stderr
    [entry] = json.loads(run.stdout)
    assert entry["upload"]["image"]["external_id"] == "cli-7"
    assert entry["upload"]["image"]["source_url"] == web.url("/photo.jpg")
    assert entry["result"]["state"] == "ANALYSIS_STATE_SUCCEEDED" and entry["result"]["external_id"] == "cli-7"
    listed = await cli("client", "list", "--external-id", "cli-7", "--json")
    assert listed.code == 0 and [r["image_id"] for r in json.loads(listed.stdout)] == [entry["upload"]["image"]["id"]]
    refused = await cli("client", "upload", "http://10.0.0.1/x.jpg")
    assert refused.code != 0 and "URL_ADDRESS_NOT_ALLOWED" in refused.stderr + refused.stdout


async def test_node_client_imports_a_url_and_reads_the_verdict(
        live_server: LiveServer, worker: WorkerProcess, web: ImageWebServer, dns: FakeDns, node: str,  # noqa: F811
        node_modules: Path) -> None:  # noqa: F811
    user = await new_user(live_server.auth, "node")
    env = {**os.environ, "PIXELCHECK_ADDR": live_server.address, "PIXELCHECK_LOGIN": user.username,
           "PIXELCHECK_PASSWORD": user.password, "PIXELCHECK_EXTERNAL_ID": "node-3"}
    code, out, err = await run(node, "client.mjs", web.url("/photo.jpg"), env=env)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["content_type"] == "image/jpeg" and int(summary["size_bytes"]) == len(PHOTO)
    assert summary["external_id"] == summary["result_external_id"] == "node-3"
    assert summary["state"] == "ANALYSIS_STATE_SUCCEEDED" and summary["watch_result_matches"] is True


# -- the SSRF suite -----------------------------------------------------------------------------------------
ADDRESS = (grpc.StatusCode.INVALID_ARGUMENT, "URL_ADDRESS_NOT_ALLOWED")
REMOTE = grpc.StatusCode.FAILED_PRECONDITION
HOSTILE: list[tuple[str, tuple[grpc.StatusCode, str]]] = [
    ("http://127.0.0.1:{internal}/photo.jpg", ADDRESS),
    ("http://127.1:{internal}/photo.jpg", ADDRESS),
    ("http://0x7f.1:{internal}/photo.jpg", ADDRESS),
    ("http://2130706433:{internal}/photo.jpg", ADDRESS),
    ("http://017700000001:{internal}/photo.jpg", ADDRESS),
    ("http://0177.0.0.1:{internal}/photo.jpg", (grpc.StatusCode.INVALID_ARGUMENT, "URL_INVALID")),  # httpx: malformed
    ("http://[::1]:{internal}/photo.jpg", ADDRESS),
    ("http://[::ffff:127.0.0.1]:{internal}/photo.jpg", ADDRESS),
    ("http://[::ffff:7f00:1]:{internal}/photo.jpg", ADDRESS),
    ("http://[0:0:0:0:0:ffff:127.0.0.1]/photo.jpg", ADDRESS),
    ("http://localhost:{internal}/photo.jpg", ADDRESS),
    ("http://LocalHost:{internal}/photo.jpg", ADDRESS),
    ("http://0.0.0.0:{internal}/photo.jpg", ADDRESS),
    ("http://0/photo.jpg", ADDRESS),
    ("http://[::]/photo.jpg", ADDRESS),
    ("http://10.0.0.5/photo.jpg", ADDRESS),
    ("http://172.16.3.4/photo.jpg", ADDRESS),
    ("http://192.168.1.1/photo.jpg", ADDRESS),
    ("http://169.254.169.254/latest/meta-data/", ADDRESS),
    ("http://[fd00:ec2::254]/latest/meta-data/", ADDRESS),
    ("http://[fe80::1%25eth0]/photo.jpg", ADDRESS),
    ("http://[fe80::1]/photo.jpg", ADDRESS),
    ("http://[fc00::1]/photo.jpg", ADDRESS),
    ("http://100.64.0.1/photo.jpg", ADDRESS),
    ("http://224.0.0.1/photo.jpg", ADDRESS),
    ("http://[ff02::1]/photo.jpg", ADDRESS),
    ("http://240.0.0.1/photo.jpg", ADDRESS),
    ("http://255.255.255.255/photo.jpg", ADDRESS),
    ("http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", ADDRESS),
    ("http://[2002:7f00:1::]/photo.jpg", ADDRESS),
    ("http://images.example.com:{internal}/photo.jpg", ADDRESS),  # public-looking name, answer 127.0.0.1
    ("http://mixed.example.com:{web}/photo.jpg", ADDRESS),  # one good address, one private
    ("http://metadata.example.com/latest/meta-data/", ADDRESS),
    ("http://127.0.0.3:{web}/to-internal", ADDRESS),
    ("http://127.0.0.3:{web}/to-metadata", ADDRESS),
    ("http://127.0.0.3:{web}/to-loopback-name", ADDRESS),
    ("http://127.0.0.3:{web}/to-file", (grpc.StatusCode.INVALID_ARGUMENT, "URL_SCHEME_NOT_ALLOWED")),
    ("http://127.0.0.3:{web}/to-credentials", (grpc.StatusCode.INVALID_ARGUMENT, "URL_CREDENTIALS_NOT_ALLOWED")),
    ("http://127.0.0.3:{web}/hop/4", (REMOTE, "URL_TOO_MANY_REDIRECTS")),
    ("file:///etc/passwd", (grpc.StatusCode.INVALID_ARGUMENT, "URL_SCHEME_NOT_ALLOWED")),
    ("gopher://127.0.0.3:{web}/_x", (grpc.StatusCode.INVALID_ARGUMENT, "URL_SCHEME_NOT_ALLOWED")),
    ("ftp://127.0.0.3/photo.jpg", (grpc.StatusCode.INVALID_ARGUMENT, "URL_SCHEME_NOT_ALLOWED")),
    ("http://user:pass@127.0.0.3:{web}/photo.jpg", (grpc.StatusCode.INVALID_ARGUMENT, "URL_CREDENTIALS_NOT_ALLOWED")),
    ("http://127.0.0.3:{web}/too-large", (REMOTE, "URL_TOO_LARGE")),
    ("http://127.0.0.3:{web}/endless", (REMOTE, "URL_TOO_LARGE")),
    ("http://127.0.0.3:{web}/drip", (REMOTE, "URL_TIMEOUT")),
    ("http://127.0.0.3:{web}/hang", (REMOTE, "URL_TIMEOUT")),
    ("http://127.0.0.3:{web}/page.html", (REMOTE, "URL_NOT_AN_IMAGE")),
    ("http://127.0.0.3:{web}/mislabelled.png", (grpc.StatusCode.INVALID_ARGUMENT, "UNSUPPORTED_TYPE")),
    ("http://127.0.0.3:{web}/gone.jpg", (REMOTE, "URL_HTTP_ERROR")),
    ("http://127.0.0.3:{web}/broken.jpg", (REMOTE, "URL_HTTP_ERROR")),
    ("http://127.0.0.3:{web}/gzipped.jpg", (REMOTE, "URL_CONTENT_ENCODING_NOT_ALLOWED")),
    ("http://nowhere.example.com/photo.jpg", (REMOTE, "URL_HOST_UNRESOLVABLE")),
    ("http://127.0.0.3:1/photo.jpg", (REMOTE, "URL_UNREACHABLE")),
    ("not a url", (grpc.StatusCode.INVALID_ARGUMENT, "URL_INVALID")),
    ("", (grpc.StatusCode.INVALID_ARGUMENT, "URL_INVALID")),
    ("http://127.0.0.3/" + "a" * 2100, (grpc.StatusCode.INVALID_ARGUMENT, "URL_INVALID")),
]


@pytest.mark.parametrize(("template", "expected"), HOSTILE, ids=[t for t, _ in HOSTILE])
async def test_hostile_url_is_refused_with_its_reason_and_nothing_stored(
        live_server: LiveServer, web: ImageWebServer, internal: ImageWebServer, dns: FakeDns,
        template: str, expected: tuple[grpc.StatusCode, str]) -> None:
    dns.answers = {"images.example.com": [["127.0.0.1"]], "mixed.example.com": [[ALLOWED_HOST, "10.1.2.3"]],
                   "metadata.example.com": [["169.254.169.254"]]}
    url = template.format(internal=internal.port, web=web.port)
    user = await new_user(live_server.auth)
    asked_before = len(internal.requests)
    failure = await fails(import_url(live_server, user, url))
    assert (failure.code, failure.reason) == expected, failure.message
    assert failure.message and "Traceback" not in failure.message
    assert stored_images(live_server, user) == 0
    assert len(internal.requests) == asked_before  # the internal service never saw a request
    events = rejections(live_server, user)
    assert [e.payload["reason"] for e in events] == [expected[1]]
    assert "secret" not in str(events[0].payload)  # credentials are not written to the audit trail


async def test_the_endless_body_is_cut_off_at_the_limit_not_read_to_the_end(
        live_server: LiveServer, web: ImageWebServer, dns: FakeDns) -> None:
    user = await new_user(live_server.auth)
    failure = await fails(import_url(live_server, user, web.url("/endless")))
    assert failure.reason == "URL_TOO_LARGE"
    # What the server got out is at most the limit plus what sat in the socket buffers when the fetch stopped.
    assert web.body_bytes_sent["/endless"] < LIMIT_BYTES + 8 * 1024 * 1024


async def test_a_dns_answer_that_changes_after_the_check_cannot_move_the_connection(
        live_server: LiveServer, web: ImageWebServer, internal: ImageWebServer, dns: FakeDns) -> None:
    """The first answer is checked and connected to; the second (internal) one is never used."""
    user = await new_user(live_server.auth)
    dns.answers = {"rebind.example.com": [[ALLOWED_HOST], ["127.0.0.1"]]}
    asked_before = len(internal.requests)
    response = await import_url(live_server, user, f"http://rebind.example.com:{web.port}/other.jpg")
    assert response.image.size_bytes == len(OTHER_PHOTO)
    assert dns.lookups.count("rebind.example.com") == 1
    assert len(internal.requests) == asked_before
    assert web.requests[-1].headers["host"] == f"rebind.example.com:{web.port}"


async def test_a_dns_answer_that_is_internal_at_the_check_is_refused(
        live_server: LiveServer, web: ImageWebServer, internal: ImageWebServer, dns: FakeDns) -> None:
    user = await new_user(live_server.auth)
    dns.answers = {"rebind.example.com": [["127.0.0.1"], [ALLOWED_HOST]]}
    failure = await fails(import_url(live_server, user, f"http://rebind.example.com:{internal.port}/photo.jpg"))
    assert failure.reason == "URL_ADDRESS_NOT_ALLOWED" and failure.info.metadata["address_class"] == "loopback"
    assert stored_images(live_server, user) == 0


# -- the README -------------------------------------------------------------------------------------------
README_URL = "https://images.example.org/harbour.jpg"


async def test_the_readme_import_commands_run_as_written(live_server: LiveServer, web: ImageWebServer,
                                                         dns: FakeDns, tmp_path: Path) -> None:
    script = section_sh_block("## Import by URL and your own ids").replace(
        "ADDR=127.0.0.1:50051", f"ADDR={live_server.address}").replace(README_URL, web.url("/other.jpg"))
    user = await new_user(live_server.auth)
    imported, listed = await run_grpcurl_script(script, token=user.access_token, cwd=tmp_path)
    assert imported["image"]["external_id"] == "case-2291" and imported["image"]["content_type"] == "image/jpeg"
    assert [i["id"] for i in listed["images"]] == [imported["image"]["id"]]
