"""The client address: the socket peer, or x-forwarded-for only behind trusted proxies."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from pixelcheck.api.client_address import ClientAddresses, peer_host

PROXIES = ClientAddresses([ip_network("10.0.0.0/8"), ip_network("fd00::/8")])


@pytest.mark.parametrize("peer, host", [
    ("ipv4:127.0.0.1:51234", "127.0.0.1"),
    ("ipv6:[::1]:51234", "::1"),
    ("ipv6:[2001:db8::7]:443", "2001:db8::7"),
    ("unix:/tmp/socket", "unix:/tmp/socket"),
])
def test_peer_host_drops_the_port(peer, host):
    assert peer_host(peer) == host


def test_without_trusted_proxies_the_header_is_ignored():
    assert ClientAddresses([]).resolve("ipv4:203.0.113.9:5000", ["198.51.100.1"]) == "203.0.113.9"


def test_an_untrusted_peer_cannot_name_another_address():
    assert PROXIES.resolve("ipv4:203.0.113.9:5000", ["198.51.100.1"]) == "203.0.113.9"


@pytest.mark.parametrize("headers, client", [
    (["198.51.100.1"], "198.51.100.1"),
    (["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # a spoofed left part changes nothing
    (["198.51.100.1, 10.0.0.7"], "198.51.100.1"),  # skips inner trusted proxies
    (["6.6.6.6", "198.51.100.1, 10.1.1.1"], "198.51.100.1"),  # several headers read as one list
    (["198.51.100.1:4711"], "198.51.100.1"),
    (["[2001:db8::1]:443"], "2001:db8::1"),
    (["2001:db8::1"], "2001:db8::1"),
    (["::ffff:198.51.100.1"], "198.51.100.1"),
    (["not-an-address, 198.51.100.1"], "198.51.100.1"),
    (["198.51.100.1, not-an-address"], "10.0.0.2"),  # garbage where a proxy would have written: stop
    (["10.0.0.9, 10.0.0.8"], "10.0.0.9"),  # only proxies: the farthest one
    ([], "10.0.0.2"),
])
def test_behind_trusted_proxies_the_right_most_untrusted_address_is_the_client(headers, client):
    assert PROXIES.resolve("ipv4:10.0.0.2:5000", headers) == client


def test_a_trusted_ipv6_proxy_is_recognised():
    assert PROXIES.resolve("ipv6:[fd00::5]:5000", ["198.51.100.1"]) == "198.51.100.1"
