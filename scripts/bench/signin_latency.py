"""SignIn latency through a real stub with the production argon2id costs (settings defaults: time cost 2,
19 MiB, parallelism 1), and the same for a wrong password and an unknown login, which must cost the same.

One in-process server on a temporary SQLite file (or --database-url) and the Redis at --redis-url (its own
key prefix; the failure limit is raised so the wrong-password rounds are not locked out).

    .venv/bin/python scripts/bench/signin_latency.py [--calls 200] [--rounds 10] [--concurrency 1]
        [--database-url mysql+pymysql://root@127.0.0.1:3306/bench] [--redis-url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time

from grpc import aio
from pixelcheck.v1 import auth_pb2, auth_pb2_grpc

from pixelcheck.api.server import start_server
from pixelcheck.bootstrap import build_container
from pixelcheck.db import upgrade
from pixelcheck.settings import Settings

PASSWORD = "violet-harbour-7421"


async def _timed(auth: auth_pb2_grpc.AuthServiceStub, login: str, password: str, calls: int,
                 concurrency: int) -> list[float]:
    durations: list[float] = []
    queue = iter(range(calls))

    async def client() -> None:
        for _ in queue:
            started = time.perf_counter()
            try:
                await auth.SignIn(auth_pb2.SignInRequest(login=login, password=password))
            except aio.AioRpcError as error:
                if error.code().name != "UNAUTHENTICATED":
                    raise
            durations.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return durations


def _row(name: str, durations: list[float]) -> str:
    cuts = statistics.quantiles(durations, n=100)
    return f"{name:16} {len(durations):6d} {statistics.median(durations):9.1f} {cuts[94]:9.1f} {max(durations):9.1f}"


async def main(args: argparse.Namespace) -> None:
    folder = tempfile.mkdtemp(prefix="pixelcheck-bench-")
    settings = Settings.from_env(environ={}, env_file="/nonexistent").with_overrides(
        data_dir=folder, database_url=args.database_url, redis_url=args.redis_url,
        redis_key_prefix=f"pixelcheck-bench-{secrets.token_hex(4)}", signin_max_failures=1_000_000,
        signin_login_max_failures=1_000_000, signin_address_max_failures=1_000_000)
    upgrade(settings.resolved_database_url)
    container = build_container(settings)
    server = await start_server(container, "127.0.0.1:0")
    channel = aio.insecure_channel(f"127.0.0.1:{server.port}")
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    username = f"bench_{secrets.token_hex(4)}"
    await auth.SignUp(auth_pb2.SignUpRequest(username=username, email=f"{username}@example.org",
                                             password=PASSWORD))
    try:
        await _timed(auth, username, PASSWORD, 5, 1)  # warm-up: connections, caches
        print(f"argon2id t={settings.argon2_time_cost} m={settings.argon2_memory_cost_kib} KiB "
              f"p={settings.argon2_parallelism}; {settings.resolved_database_url.split(':')[0]}; "
              f"concurrency {args.concurrency}")
        print(f"{'SignIn':16} {'calls':>6} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}")
        cases = {"success": (username, PASSWORD), "wrong password": (username, "wrong-pw-123"),
                 "unknown login": (f"nobody_{secrets.token_hex(4)}", "wrong-pw-123")}
        results: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):  # interleaved rounds: drift (audit writes, caches) hits every case alike
            for name, (login, password) in cases.items():
                results[name] += await _timed(auth, login, password, args.calls // args.rounds, args.concurrency)
        for name, durations in results.items():
            print(_row(name, durations))
    finally:
        await channel.close()
        await server.stop(grace=1.0)
        container.redis.delete(*container.redis.keys(f"{settings.redis_key_prefix}:*") or ["-"])
        container.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    asyncio.run(main(parser.parse_args()))
