"""A real HTTP server on a loopback address for URL-import and webhook tests: well-behaved and hostile routes.

Written on asyncio streams rather than a framework so each route can misbehave exactly (lie about its
length, never end, drip, hang, redirect anywhere). It records every request it receives and how many body
bytes each response got out, so tests can tell what the importer asked for and where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Route = Callable[["Exchange"], Awaitable[None]]


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Exchange:
    request: ReceivedRequest
    writer: asyncio.StreamWriter
    server: ImageWebServer
    reader: asyncio.StreamReader

    async def until_client_leaves(self) -> None:
        """Answers nothing and returns once the client has closed the connection."""
        with contextlib.suppress(ConnectionError, OSError):
            while await self.reader.read(4096):
                pass

    async def respond(self, status: int, body: bytes = b"", content_type: str = "image/jpeg",
                      headers: dict[str, str] | None = None, declared_length: int | None = None) -> None:
        head = {"Content-Type": content_type, "Content-Length": str(len(body) if declared_length is None
                                                                     else declared_length), "Connection": "close"}
        head.update(headers or {})
        lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in head.items() if v]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.writer.write(body)
        self.server.body_bytes_sent[self.request.path] = len(body)
        await self.writer.drain()

    async def redirect(self, location: str, status: int = 302, headers: dict[str, str] | None = None) -> None:
        await self.respond(status, b"", "text/plain", {"Location": location, **(headers or {})})

    async def stream_forever(self, chunk: bytes, content_type: str = "image/jpeg",
                             pause: Callable[[], Awaitable[None]] | None = None) -> None:
        """A chunked body that never ends; stops when the client goes away."""
        self.writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
                          .encode())
        sent = 0
        try:
            while True:
                self.writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                await self.writer.drain()
                sent += len(chunk)
                self.server.body_bytes_sent[self.request.path] = sent
                if pause is not None:
                    await pause()
        except (ConnectionError, OSError):
            return


@dataclass
class ImageWebServer:
    host: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[ReceivedRequest] = field(default_factory=list)
    body_bytes_sent: dict[str, int] = field(default_factory=dict)
    port: int = 0
    _server: asyncio.Server | None = None
    _never: asyncio.Event = field(default_factory=asyncio.Event)  # set only at shutdown: hanging routes wait on it
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # set at every request (tests clear it)

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def paths_requested(self) -> list[str]:
        return [r.path for r in self.requests]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 60.0) -> None:
        """Until condition() holds, re-checked at every request; AssertionError after timeout seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            self.arrived.clear()
            if condition():
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"not reached within {timeout:g} s; requests so far: {self.paths_requested()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)

    async def start(self) -> ImageWebServer:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._never.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def hang(self) -> None:
        await self._never.wait()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            first, *header_lines = head.decode("latin-1").split("\r\n")
            method, path, _ = first.split(" ", 2)
            headers = {}
            for line in header_lines:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            body = await reader.readexactly(length) if length else b""
            request = ReceivedRequest(method, path, headers, body)
            self.requests.append(request)
            self.arrived.set()
            route = self.routes.get(path)
            exchange = Exchange(request, writer, self, reader)
            if route is None:
                await exchange.respond(404, b"not found", "text/plain")
            else:
                await route(exchange)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            writer.close()


class Script:
    """What one receiver path answers, attempt after attempt: a status code, or "hang" (never answers; the
    attempt counts as open until the sender gives up and closes the connection)."""

    def __init__(self, *answers: int | str) -> None:
        self.answers = list(answers)
        self.open_now = 0
        self.most_open = 0

    async def __call__(self, exchange: Exchange) -> None:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            if answer == "hang":
                await exchange.until_client_leaves()
            else:
                await exchange.respond(int(answer), b"ok", "text/plain")
        finally:
            self.open_now -= 1


def gzip_body(data: bytes) -> bytes:
    return gzip.compress(data)
