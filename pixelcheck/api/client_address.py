"""The caller's network address: the socket peer, or what trusted proxies say in x-forwarded-for.

x-forwarded-for is only believed when the socket peer is one of PIXELCHECK_TRUSTED_PROXIES; then the
right-most address in the header that is not itself a trusted proxy is the client (every proxy appends
the address it was connected from, so the entries left of it are whatever the client chose to send).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

FORWARDED_FOR_KEY = "x-forwarded-for"
Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address


def peer_host(peer: str) -> str:
    """The address part of a gRPC peer string ("ipv4:10.0.0.1:5123" -> "10.0.0.1", "ipv6:[::1]:5" -> "::1").

    The port changes with every connection, so counting per address must ignore it.
    """
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or rest
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]") or rest
    return peer


def _parse(entry: str) -> Address | None:
    """An address from one x-forwarded-for entry ("1.2.3.4", "1.2.3.4:80", "[::1]:80", "::1"), else None."""
    entry = entry.strip().strip('"')
    if entry.startswith("["):
        entry = entry[1:].partition("]")[0]
    elif entry.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has several colons
        entry = entry.partition(":")[0]
    try:
        address = ip_address(entry)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientAddresses:
    """Resolves the client address of a call from its peer and x-forwarded-for headers."""

    def __init__(self, trusted_proxies: Sequence[Network]) -> None:
        self._trusted = tuple(trusted_proxies)

    def _is_trusted(self, address: Address) -> bool:
        return any(address.version == net.version and address in net for net in self._trusted)

    def resolve(self, peer: str, forwarded_for: Iterable[str] = ()) -> str:
        """The client's address for a call from peer that carried these x-forwarded-for header values."""
        host = peer_host(peer)
        if not self._trusted:
            return host  # no proxy is trusted: the header is whatever the client wrote
        peer_address = _parse(host) if peer.startswith(("ipv4:", "ipv6:")) else None
        if peer_address is None or not self._is_trusted(peer_address):
            return host
        hops = [part for value in forwarded_for for part in value.split(",") if part.strip()]
        client = host
        for entry in reversed(hops):
            address = _parse(entry)
            if address is None:
                return client  # garbage no trusted proxy would write: stop at the last believable hop
            client = str(address)
            if not self._is_trusted(address):
                return client
        return client  # every hop is a trusted proxy: the left-most one is as close as we can get
