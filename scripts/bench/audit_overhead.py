"""Requests/s of a cheap authenticated unary RPC (GetCurrentUser) with and without audit recording.

One run starts two servers on one database in this process: "audited" (the production interceptor chain,
every call buffered for the audit trail and counted in metrics) and "unaudited" (the same chain with a
call observer that does nothing). A separate client process drives each in turn, alternating rounds so
drift affects both alike, and a table of the median requests/s is printed.

    .venv/bin/python scripts/bench/audit_overhead.py [--seconds 5] [--rounds 3] [--concurrency 32]
        [--database-url mysql+pymysql://root@127.0.0.1:3306/bench]   (default: a temporary SQLite file)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grpc import aio
from pixelcheck.v1 import auth_pb2, auth_pb2_grpc
from sqlalchemy import func, select

from pixelcheck.api.calls import CallInfo
from pixelcheck.api.server import RunningServer, start_server
from pixelcheck.audit.models import AuditEvent
from pixelcheck.bootstrap import Container, build_container
from pixelcheck.db import upgrade
from pixelcheck.settings import Settings


class _DiscardCalls:
    def record_call(self, info: CallInfo, code: str, duration_ms: int) -> None:
        """Record nothing: the baseline without audit."""


class UnauditedContainer(Container):
    """A container whose server reports finished calls nowhere."""

    @property
    def call_observer(self) -> _DiscardCalls:  # type: ignore[override]
        return _DiscardCalls()


async def client(address: str, token: str, seconds: float, concurrency: int) -> int:
    """Calls completed by `concurrency` callers in `seconds`."""
    async with aio.insecure_channel(address) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        metadata = (("authorization", f"Bearer {token}"),)
        await stub.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), metadata=metadata)
        deadline = time.perf_counter() + seconds
        done = 0

        async def caller() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await stub.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), metadata=metadata)
                done += 1

        await asyncio.gather(*(caller() for _ in range(concurrency)))
        return done


def run_client(address: str, token: str, seconds: float, concurrency: int) -> float:
    """Requests/s measured by a separate client process."""
    out = subprocess.run([sys.executable, __file__, "--client", address, token, str(seconds), str(concurrency)],
                         check=True, capture_output=True, text=True).stdout
    return int(out.strip()) / seconds


async def bench(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="pixelcheck-bench-"))
    settings = Settings.from_env(environ={}, env_file="/nonexistent").with_overrides(
        data_dir=str(workdir), database_url=args.database_url, argon2_time_cost=1, argon2_memory_cost_kib=1024,
        log_level="WARNING")
    upgrade(settings.resolved_database_url)
    audited_container = build_container(settings)
    base = build_container(settings)
    unaudited_container = UnauditedContainer(**{f.name: getattr(base, f.name)
                                                for f in dataclasses.fields(Container)})
    account = audited_container.identity.sign_up(username=f"bench_{int(time.time())}",
                                                 email=f"bench{int(time.time())}@example.org",
                                                 password="violet-harbour-7421", display_name="Bench")
    token, _ = audited_container.tokens.issue_access(account.id, ["USER"])
    servers: dict[str, RunningServer] = {
        "audited": await start_server(audited_container, "127.0.0.1:0"),
        "unaudited": await start_server(unaudited_container, "127.0.0.1:0"),
    }
    rates: dict[str, list[float]] = {name: [] for name in servers}
    try:
        for _ in range(args.rounds):
            for name, server in servers.items():
                rate = await asyncio.to_thread(run_client, f"127.0.0.1:{server.port}", token, args.seconds,
                                               args.concurrency)
                rates[name].append(rate)
    finally:
        for server in servers.values():
            await server.stop(grace=1.0)
    with audited_container.read_sessions() as session:
        audited_rows = session.scalar(select(func.count()).select_from(AuditEvent))
    audited_container.close()
    unaudited_container.close()
    print(f"database: {settings.resolved_database_url.split('://')[0]}; {args.rounds} rounds x {args.seconds}s, "
          f"{args.concurrency} concurrent callers, client in a separate process")
    print(f"{'server':<12}{'median req/s':>14}{'rounds':>40}")
    for name, values in rates.items():
        print(f"{name:<12}{statistics.median(values):>14.0f}{'  '.join(f'{v:.0f}' for v in values):>40}")
    overhead = 1 - statistics.median(rates["audited"]) / statistics.median(rates["unaudited"])
    print(f"audit overhead: {overhead:.1%} of throughput; {audited_rows} audit events written")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        address, token, seconds, concurrency = sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
        print(asyncio.run(client(address, token, seconds, concurrency)))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database-url", default="")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
