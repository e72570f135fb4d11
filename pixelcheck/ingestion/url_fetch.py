"""Fetches an image by URL for ImportImage without letting the URL turn the server against its own network.

Built on httpx, with one change underneath it: the connection pool's network backend resolves each host
name once, checks every address of the answer (pixelcheck.ingestion.url_policy) and connects to the checked
address itself, so a DNS answer that changes between check and connect (rebinding) cannot redirect the
connection. TLS still verifies the certificate against the URL's host name (httpcore passes it as SNI).

Every hop of a redirect (at most 3) is checked again, as is every new connection. No cookies are kept,
the environment's proxies and .netrc are ignored (trust_env=False), the user agent is fixed, the body is
read raw (no decompression) and the read stops as soon as it passes the size limit: an image's, or a video
clip's when the first bytes are one (a clip is written to a temporary file as it arrives, never held whole
in memory). One deadline covers the whole fetch, redirects included; connect and read have their own
shorter timeouts.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import http.cookiejar
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

import certifi
import httpcore
import httpx

from pixelcheck.errors import DomainError, FailedPrecondition
from pixelcheck.image_formats import SNIFF_BYTES
from pixelcheck.ingestion.spool import SpoolFile
from pixelcheck.ingestion.url_policy import DEFAULT_PORTS, FetchPolicy, IPAddress, check_destination, check_url
from pixelcheck.video_formats import sniff_video_type

USER_AGENT = "PixelCheck-ImportImage/1"
MAX_REDIRECTS = 3
_REDIRECTS = (301, 302, 303, 307, 308)
_IMAGE_TYPES_OR_UNKNOWN = ("image/", "video/", "application/octet-stream", "binary/octet-stream")

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


async def system_resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses the operating system's resolver gives for host (one lookup)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for info in infos:
        address = ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int
    video_max_bytes: int = 0  # a video clip's limit (0: max_bytes, as an image's)
    spool_dir: str = ""  # where a clip is written as it arrives (empty: the system's temporary folder)
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 10.0
    total_timeout_seconds: float = 30.0


@dataclass(frozen=True)
class FetchedImage:
    data: bytes  # an image's bytes (empty for a clip)
    sha256: str
    final_url: str  # after redirects
    spool: SpoolFile | None = None  # a clip's bytes, in a temporary file the receiver must discard()

    @property
    def size(self) -> int:
        return self.spool.size if self.spool is not None else len(self.data)


def remote_failure(message: str, reason: str, **metadata: str) -> FailedPrecondition:
    return FailedPrecondition(message, reason=reason, metadata=metadata)


async def resolve_checked(policy: FetchPolicy, resolve: Resolver, host: str, port: int) -> list[IPAddress]:
    """host's addresses from one lookup, when every one of them passes the rules (not only the one tried
    first). Raises InvalidInput (URL_ADDRESS_NOT_ALLOWED, URL_PORT_NOT_ALLOWED) or FailedPrecondition
    (URL_HOST_UNRESOLVABLE)."""
    try:
        addresses = await resolve(host, port)
    except (OSError, UnicodeError, ValueError):
        raise remote_failure(f"The host {host} could not be resolved", "URL_HOST_UNRESOLVABLE") from None
    if not addresses:
        raise remote_failure(f"The host {host} has no address", "URL_HOST_UNRESOLVABLE")
    for address in addresses:
        check_destination(policy, host=host, address=address, port=port)
    return addresses


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves once, checks every address, connects to the checked address (never to the name)."""

    def __init__(self, policy: FetchPolicy, resolve: Resolver) -> None:
        self._policy = policy
        self._resolve = resolve
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        addresses = await resolve_checked(self._policy, self._resolve, host, port)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(str(address), port, timeout=timeout,
                                                      local_address=local_address, socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise remote_failure("Unix sockets are never fetched", "URL_ADDRESS_NOT_ALLOWED")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process (loading the CA bundle costs tens of milliseconds)."""
    return ssl.create_default_context(cafile=certifi.where())


class _CheckedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        super().__init__(verify=_tls_context(), trust_env=False, retries=0)
        # httpx exposes no parameter for httpcore's network backend: its pool is rebuilt with ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_tls_context(), max_connections=4,
            max_keepalive_connections=0, http1=True, http2=False, retries=0, network_backend=backend)


def _no_cookies() -> httpx.Cookies:
    return httpx.Cookies(http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[])))


def guarded_client(policy: FetchPolicy, resolve: Resolver, *, timeout: httpx.Timeout,
                   headers: dict[str, str]) -> httpx.AsyncClient:
    """An httpx client whose every connection obeys policy (resolve once, check, connect to the checked
    address); no redirects followed, no cookies kept, nothing taken from the environment."""
    transport = _CheckedTransport(_CheckedBackend(policy, resolve))
    return httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False,
                             cookies=_no_cookies(), headers=headers)


async def check_target(policy: FetchPolicy, resolve: Resolver, url_text: str) -> httpx.URL:
    """The URL parsed, when its form and every address its host resolves to pass the rules (no connection is
    made). Raises InvalidInput (URL_INVALID, URL_ADDRESS_NOT_ALLOWED, ...) or FailedPrecondition
    (URL_HOST_UNRESOLVABLE)."""
    url = check_url(url_text)
    await resolve_checked(policy, resolve, url.host, url.port or DEFAULT_PORTS[url.scheme])
    return url


class UrlFetcher:
    """Fetches one image per call under the rules in the module docstring."""

    def __init__(self, policy: FetchPolicy, limits: FetchLimits, *, resolve: Resolver = system_resolve) -> None:
        self.policy = policy
        self.limits = limits
        self.resolve = resolve  # replaceable for tests of hostile DNS answers

    async def fetch(self, url_text: str) -> FetchedImage:
        """The image's bytes, or a clip's in a temporary file (the caller discards it). Raises InvalidInput for a
        URL or address the rules refuse and FailedPrecondition for what the remote end did (URL_TIMEOUT,
        URL_TOO_LARGE, URL_HTTP_ERROR, URL_NOT_AN_IMAGE, ...); no temporary file is left when it raises."""
        spools: list[SpoolFile] = []
        try:
            return await self._fetch(url_text, spools)
        except BaseException:
            for spool in spools:
                spool.discard()
            raise

    async def _fetch(self, url_text: str, spools: list[SpoolFile]) -> FetchedImage:
        url = check_url(url_text)
        limits = self.limits
        timeout = httpx.Timeout(limits.read_timeout_seconds, connect=limits.connect_timeout_seconds)
        headers = {"User-Agent": USER_AGENT, "Accept": "image/*", "Accept-Encoding": "identity"}
        client = guarded_client(self.policy, lambda h, p: self.resolve(h, p), timeout=timeout, headers=headers)
        try:
            async with asyncio.timeout(limits.total_timeout_seconds), client:
                return await self._follow(client, url, spools)
        except TimeoutError:
            raise remote_failure(f"The fetch took longer than {limits.total_timeout_seconds:g} seconds",
                                 "URL_TIMEOUT") from None
        except httpx.TimeoutException:
            raise remote_failure("The remote server did not answer in time", "URL_TIMEOUT") from None
        except DomainError:
            raise
        except httpx.ConnectError:
            raise remote_failure("The remote server could not be reached (refused, or TLS failed)",
                                 "URL_UNREACHABLE") from None
        except (httpx.TransportError, httpx.DecodingError):
            raise remote_failure("The remote server broke off or sent an invalid HTTP response",
                                 "URL_FETCH_FAILED") from None

    async def _follow(self, client: httpx.AsyncClient, url: httpx.URL, spools: list[SpoolFile]) -> FetchedImage:
        for hop in range(MAX_REDIRECTS + 1):
            response = await client.send(client.build_request("GET", url), stream=True)
            try:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    if hop == MAX_REDIRECTS:
                        raise remote_failure(f"The URL redirected more than {MAX_REDIRECTS} times",
                                             "URL_TOO_MANY_REDIRECTS")
                    try:
                        url = check_url(str(url.join(response.headers["location"])))
                    except httpx.InvalidURL:
                        raise remote_failure("The URL redirected to an invalid location", "URL_INVALID") from None
                    continue
                return await self._body(response, url, spools)
            finally:
                await response.aclose()
        raise AssertionError("unreachable: the loop returns or raises")

    async def _body(self, response: httpx.Response, url: httpx.URL, spools: list[SpoolFile]) -> FetchedImage:
        if not 200 <= response.status_code < 300:
            raise remote_failure(f"The remote server answered HTTP {response.status_code}", "URL_HTTP_ERROR",
                                 status_code=str(response.status_code))
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type and not media_type.startswith(_IMAGE_TYPES_OR_UNKNOWN):
            raise remote_failure(f"The URL serves {media_type}, not an image", "URL_NOT_AN_IMAGE",
                                 content_type=media_type[:100])
        if response.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
            raise remote_failure("The remote server compressed the image although asked not to",
                                 "URL_CONTENT_ENCODING_NOT_ALLOWED")
        video_limit = max(self.limits.video_max_bytes, self.limits.max_bytes)
        # Until the first bytes tell, a response that may be a clip (not declared an image) has a clip's limit.
        limit = self.limits.max_bytes if media_type.startswith("image/") else video_limit
        declared = response.headers.get("content-length", "")
        self._check_declared(declared, limit)
        buffer = bytearray()
        head = b""
        spool: SpoolFile | None = None
        digest = hashlib.sha256()
        size = 0
        async for chunk in response.aiter_raw():
            if len(head) < SNIFF_BYTES:
                head += chunk[:SNIFF_BYTES - len(head)]
                if len(head) >= SNIFF_BYTES:  # the bytes decide: a clip's limit only for a clip
                    clip = sniff_video_type(head) is not None
                    limit = video_limit if clip else self.limits.max_bytes
                    self._check_declared(declared, limit)
                    if clip:
                        spool = SpoolFile(self.limits.spool_dir)
                        spools.append(spool)
                        spool.write(buffer)
                        buffer = bytearray()
            if size + len(chunk) > limit:
                raise remote_failure(f"The {_noun(spool)} passed the limit of {limit} bytes", "URL_TOO_LARGE",
                                     limit_bytes=str(limit))
            if spool is not None:
                spool.write(chunk)
            else:
                buffer += chunk
            size += len(chunk)
            digest.update(chunk)
        if spool is not None:
            spool.finish()
            return FetchedImage(data=b"", sha256=digest.hexdigest(), final_url=str(url), spool=spool)
        if size > self.limits.max_bytes:  # shorter than SNIFF_BYTES can only be an image
            raise remote_failure(f"The image passed the limit of {self.limits.max_bytes} bytes", "URL_TOO_LARGE",
                                 limit_bytes=str(self.limits.max_bytes))
        return FetchedImage(data=bytes(buffer), sha256=digest.hexdigest(), final_url=str(url))

    @staticmethod
    def _check_declared(declared: str, limit: int) -> None:
        if declared.isdigit() and int(declared) > limit:
            raise remote_failure(f"The file is {declared} bytes; the limit is {limit} bytes", "URL_TOO_LARGE",
                                 limit_bytes=str(limit))


def _noun(spool: SpoolFile | None) -> str:
    return "image" if spool is None else "video clip"
