"""Which URLs the server may fetch, and which addresses it may connect to (the SSRF rules of ImportImage).

Two checks, both before a single byte is sent:

- `check_url` on the text: http or https only, no user name or password, a host, at most 2048 characters;
- `check_destination` on every address a host name resolved to, at connect time: only globally routable
  unicast addresses (no loopback, private, link-local / cloud metadata, CGNAT, multicast, unspecified,
  reserved or documentation ranges, also when wrapped in IPv4-mapped, 6to4, Teredo or NAT64 IPv6 forms),
  on port 80 or 443 (or one of PIXELCHECK_URL_FETCH_PORTS).

PIXELCHECK_URL_FETCH_ALLOW (CIDRs, addresses or exact host names) lets destinations in explicitly, on any
port: an intranet image server, or the local servers of the test suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import httpx

from pixelcheck.errors import InvalidInput

IPAddress = IPv4Address | IPv6Address
MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
_CGNAT = IPv4Network("100.64.0.0/10")
_NAT64 = IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class FetchPolicy:
    """The operator's exceptions to the address rules."""

    allowed_networks: tuple[IPv4Network | IPv6Network, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()
    extra_ports: frozenset[int] = frozenset()

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.allowed_hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.allowed_networks if network.version == address.version)


def refused(message: str, reason: str, **metadata: str) -> InvalidInput:
    return InvalidInput(message, reason=reason, violations=[("url", message)], metadata=metadata)


def check_url(text: str) -> httpx.URL:
    """The URL parsed, when its form is acceptable. Raises InvalidInput (URL_INVALID, URL_SCHEME_NOT_ALLOWED,
    URL_CREDENTIALS_NOT_ALLOWED)."""
    if not text.strip():
        raise refused("url is required", "URL_INVALID")
    if len(text) > MAX_URL_LENGTH:
        raise refused(f"The URL is longer than {MAX_URL_LENGTH} characters", "URL_INVALID")
    if any(not ch.isprintable() or ch.isspace() for ch in text):
        raise refused("The URL contains spaces or control characters", "URL_INVALID")
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError):
        raise refused("The URL cannot be parsed", "URL_INVALID") from None
    if url.scheme not in DEFAULT_PORTS:
        raise refused(f"Only http and https URLs can be imported, not {url.scheme or 'a relative URL'}",
                      "URL_SCHEME_NOT_ALLOWED", scheme=url.scheme)
    if url.userinfo or "@" in text.split("//", 1)[-1].split("/", 1)[0]:
        raise refused("URLs with a user name or password are not accepted", "URL_CREDENTIALS_NOT_ALLOWED")
    if not url.host:
        raise refused("The URL has no host", "URL_INVALID")
    if "%" in url.host:  # an IPv6 zone id: only link-local addresses carry one
        raise refused("The URL's host resolves to a forbidden address (link-local)", "URL_ADDRESS_NOT_ALLOWED",
                      address_class="link-local")
    return url


def address_class(address: IPAddress) -> str | None:
    """Why an address is not publicly routable (loopback, private, ...), or None when it is."""
    if isinstance(address, IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = address_class(embedded)
            return f"ipv4-in-ipv6 {inner}" if inner else None
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"  # includes 169.254.169.254, the cloud metadata service
    if address.is_multicast:
        return "multicast"
    if isinstance(address, IPv4Address) and address in _CGNAT:
        return "shared (CGNAT)"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "not globally routable"
    return None


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:  # deprecated IPv4-compatible form ::a.b.c.d
        return IPv4Address(int(address))
    return None


def check_destination(policy: FetchPolicy, *, host: str, address: IPAddress, port: int) -> None:
    """Refuses a connection the rules forbid. Raises InvalidInput (URL_ADDRESS_NOT_ALLOWED, URL_PORT_NOT_ALLOWED)."""
    if policy.allows_host(host) or policy.allows_address(address):
        return
    kind = address_class(address)
    if kind is not None:
        raise refused(f"The URL's host resolves to a forbidden address ({kind})",
                      "URL_ADDRESS_NOT_ALLOWED", address_class=kind)
    if port not in DEFAULT_PORTS.values() and port not in policy.extra_ports:
        raise refused(f"Port {port} is not fetched; only ports 80 and 443 are",
                      "URL_PORT_NOT_ALLOWED", port=str(port))

