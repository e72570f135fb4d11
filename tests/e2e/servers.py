"""The real PixelCheck server started in-process for end-to-end tests, with a client channel to it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from grpc import aio
from pixelcheck.v1 import auth_pb2_grpc

from pixelcheck.api.server import RunningServer, start_server
from pixelcheck.bootstrap import Container, build_container
from pixelcheck.settings import Settings

StubT = TypeVar("StubT")


@dataclass
class LiveServer:
    """A started server and a client channel to it."""

    address: str
    settings: Settings
    container: Container
    running: RunningServer
    channel: aio.Channel

    def stub(self, stub_class: type[StubT]) -> StubT:
        """A client stub of stub_class on this server's channel."""
        return stub_class(self.channel)  # type: ignore[call-arg]

    @property
    def auth(self) -> auth_pb2_grpc.AuthServiceStub:
        return self.stub(auth_pb2_grpc.AuthServiceStub)

    async def stop(self) -> None:
        await self.channel.close()
        await self.running.stop(grace=1.0)
        self.container.close()


async def start_live_server(settings: Settings) -> LiveServer:
    """Start the real server for settings on 127.0.0.1 and a free port, with a channel to it."""
    container = build_container(settings, role="server")
    running = await start_server(container, "127.0.0.1:0")
    address = f"127.0.0.1:{running.port}"
    channel = aio.insecure_channel(address)
    await channel.channel_ready()
    return LiveServer(address, settings, container, running, channel)
