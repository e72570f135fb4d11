"""A TCP proxy the test controls: cut() drops every connection and refuses new ones, restore() listens again
on the same port. It stands between a server and its private MariaDB database to make the database
unreachable without touching the shared MariaDB server. Setting `delay_seconds` holds every chunk it forwards
that long (a slow network or a slow blob store)."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from tests.processes import free_port


class TcpProxy:
    """Forwards 127.0.0.1:<port> to target_host:target_port, on an event loop in a thread of its own."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.port = free_port()
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.delay_seconds = 0.0  # held before forwarding each chunk, in both directions

    def start(self) -> TcpProxy:
        self._thread.start()
        self.restore()
        return self

    def restore(self) -> None:
        """Listen (again) on the same port."""
        self._call(self._listen())

    def cut(self) -> None:
        """Stop listening and close every open connection, as an unplugged network would."""
        self._call(self._cut())

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.update((client_writer, upstream_writer))
        await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.delay_seconds > 0:
                    await asyncio.sleep(self.delay_seconds)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()
