"""The SSRF rules of ImportImage on their own: URL forms, address classes, ports and the operator's allow-list,
plus the fetcher against a real local server with and without PIXELCHECK_URL_FETCH_ALLOW."""

from __future__ import annotations

from collections.abc import AsyncIterator
from ipaddress import ip_address, ip_network

import pytest
import pytest_asyncio

from pixelcheck.errors import InvalidInput
from pixelcheck.ingestion.url_fetch import FetchLimits, UrlFetcher
from pixelcheck.ingestion.url_policy import FetchPolicy, address_class, check_destination, check_url
from pixelcheck.settings import Settings, SettingsError
from tests import images
from tests.image_web_server import Exchange, ImageWebServer


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("127.255.255.254", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.31.0.1", "private"), ("192.168.0.1", "private"), ("fd12::1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("100.64.0.1", "shared (CGNAT)"),
    ("100.127.255.254", "shared (CGNAT)"), ("224.0.0.251", "multicast"), ("ff05::2", "multicast"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("240.0.0.1", "private"), ("192.0.2.10", "private"),
    ("::ffff:127.0.0.1", "ipv4-in-ipv6 loopback"), ("::ffff:169.254.169.254", "ipv4-in-ipv6 link-local"),
    ("64:ff9b::a00:1", "ipv4-in-ipv6 private"), ("2002:c0a8:101::", "ipv4-in-ipv6 private"),
    ("::7f00:1", "ipv4-in-ipv6 loopback"),
])
def test_non_public_addresses_are_classified(address: str, kind: str) -> None:
    assert address_class(ip_address(address)) == kind


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert address_class(ip_address(address)) is None


def test_public_address_on_a_non_default_port_is_refused_unless_the_port_is_allowed() -> None:
    public = ip_address("93.184.215.14")
    with pytest.raises(InvalidInput) as refused:
        check_destination(FetchPolicy(), host="example.org", address=public, port=8080)
    assert refused.value.reason == "URL_PORT_NOT_ALLOWED"
    check_destination(FetchPolicy(), host="example.org", address=public, port=443)
    check_destination(FetchPolicy(extra_ports=frozenset({8080})), host="example.org", address=public, port=8080)


def test_allow_list_lets_networks_and_exact_hosts_in_on_any_port() -> None:
    policy = FetchPolicy(allowed_networks=(ip_network("10.20.0.0/16"),), allowed_hosts=frozenset({"img.corp"}))
    check_destination(policy, host="anything", address=ip_address("10.20.3.4"), port=8443)
    check_destination(policy, host="IMG.corp.", address=ip_address("192.168.9.9"), port=81)
    with pytest.raises(InvalidInput) as refused:
        check_destination(policy, host="other.corp", address=ip_address("10.21.0.1"), port=80)
    assert refused.value.reason == "URL_ADDRESS_NOT_ALLOWED" and refused.value.metadata["address_class"] == "private"


@pytest.mark.parametrize(("url", "reason"), [
    ("", "URL_INVALID"), ("   ", "URL_INVALID"), ("http://exa mple.com/", "URL_INVALID"),
    ("http://example.com/\x00", "URL_INVALID"), ("http:///path-only", "URL_INVALID"),
    ("javascript:alert(1)", "URL_SCHEME_NOT_ALLOWED"), ("data:image/png;base64,AAAA", "URL_SCHEME_NOT_ALLOWED"),
    ("//example.com/relative", "URL_SCHEME_NOT_ALLOWED"), ("http://a@example.com/", "URL_CREDENTIALS_NOT_ALLOWED"),
    ("https://:pw@example.com/", "URL_CREDENTIALS_NOT_ALLOWED"), ("http://[fe80::1%25lo]/", "URL_ADDRESS_NOT_ALLOWED"),
])
def test_malformed_and_forbidden_url_forms_are_refused_before_any_lookup(url: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_url(url)
    assert refused.value.reason == reason and refused.value.violations[0][0] == "url"


def test_settings_parse_the_allow_list_and_ports_and_refuse_garbage() -> None:
    settings = Settings(url_fetch_allow="10.0.0.0/8, 127.0.0.3 images.intranet.", url_fetch_ports="8080 8443")
    networks, hosts = settings.url_fetch_allowed
    assert networks == (ip_network("10.0.0.0/8"), ip_network("127.0.0.3/32")) and hosts == {"images.intranet"}
    assert settings.url_fetch_extra_ports == {8080, 8443}
    with pytest.raises(SettingsError, match="PIXELCHECK_URL_FETCH_ALLOW"):
        Settings(url_fetch_allow="10.0.0.0/33").validate()
    with pytest.raises(SettingsError, match="PIXELCHECK_URL_FETCH_PORTS"):
        Settings(url_fetch_ports="80 http").validate()


PHOTO = images.png(64, 48)


@pytest_asyncio.fixture(loop_scope="session")
async def local_server() -> AsyncIterator[ImageWebServer]:
    photo = PHOTO

    async def serve(x: Exchange) -> None:
        await x.respond(200, photo, "image/png")

    server = await ImageWebServer("127.0.0.1", routes={"/p.png": serve}).start()
    yield server
    await server.stop()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_local_server_is_refused_without_the_allow_list_and_fetched_with_it(
        local_server: ImageWebServer) -> None:
    limits = FetchLimits(max_bytes=1 << 20)
    with pytest.raises(InvalidInput) as refused:
        await UrlFetcher(FetchPolicy(), limits).fetch(local_server.url("/p.png"))
    assert refused.value.reason == "URL_ADDRESS_NOT_ALLOWED" and local_server.requests == []

    allowed = FetchPolicy(allowed_networks=(ip_network("127.0.0.1/32"),))
    fetched = await UrlFetcher(allowed, limits).fetch(local_server.url("/p.png"))
    assert fetched.data == PHOTO and local_server.paths_requested() == ["/p.png"]
