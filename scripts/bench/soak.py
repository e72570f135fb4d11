#!/usr/bin/env python3
"""Soak: the service as deployed (N server processes, two inference workers, the webhooks worker, beat, S3),
driven for --minutes at --load times its capacity measured at the start, with faults injected on a schedule;
then one table of checks. Exit code 0 only when every judged check passes.

1. Capacity: a burst of ~1 MP JPEGs from one account; verdicts per second of the two workers.
2. The quiet account's upload -> verdict latency, idle.
3. Traffic for --minutes: the flooding account's paced uploads (some watched), the quiet account one at a time,
   URL imports of an account with a normal, a slow and a failing webhook endpoint, region maps requested
   and polled to READY, single and batch reports, sign-ins, refreshes and ListResults paging; faults one
   after another (soak_faults.py), each followed by a recovery probe. Memory and Redis sampled throughout.
4. A bounded drain, then the checks (soak_checks.py) and the audit chain verified by VerifyAuditLog.

    scripts/soak [--minutes 10] [--load 1.2] [--server-processes 2] [--no-faults] [--seed 0] [--ci]
        [--database-url mysql+pymysql://root@127.0.0.1:3306/x] [--redis-url redis://127.0.0.1:6379/0]
        [--results scripts/bench/RESULTS.md] [--trace-memory [FRAMES]] [--trace-every MINUTES]
        [--server-env NAME=VALUE ...]

The server children report their heap in use (malloc and pymalloc) every --sample-seconds; their memory is judged by
that, summed over the children (soak_heap.py). With --trace-memory they also trace their allocations (tracemalloc,
FRAMES frames each, default 10) from the start of traffic and dump a heap snapshot every --trace-every minutes; the
allocation sites that grew most in each child are printed after the table. Tracing slows the servers and adds to
their RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import platform
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from fairness import wait_finished
from pixelcheck.v1 import audit_pb2, audit_pb2_grpc, auth_pb2, auth_pb2_grpc, common_pb2
from soak_calls import Account, Calls, ImagePool, new_account, upload, watch
from soak_checks import (
    Row,
    Sampler,
    exit_rows,
    heap_rows,
    memory_rows,
    outcome_rows,
    quiet_breakdown_rows,
    redis_rows,
    unfinished,
    unseen_verdict_rows,
    wait_until,
    webhook_rows,
)
from soak_checks import delivered as all_delivered
from soak_deploy import Deployment, deployment
from soak_faults import KINDS, RECOVERY_TARGET_SECONDS, Fault, run_faults
from soak_heap import report as heap_report
from soak_heap import request_snapshots, server_env
from soak_report import fairness_rows, print_results, traffic_rows
from soak_traffic import (
    Traffic,
    accounts_and_listing,
    flood,
    keep_tokens_fresh,
    quiet,
    region_maps,
    register_webhooks,
    reports,
    start_receivers,
    url_imports,
)
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from stack import PASSWORD, add_stack_arguments, rss_kib

from pixelcheck.analysis.models import Analysis
from pixelcheck.bootstrap import operator_container

SIZE = (1152, 864)
CI = {"minutes": 2.0, "burst": 24, "idle_probes": 10, "sample_seconds": 2.0, "drain_seconds": 150.0}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="traffic duration (default 10)")
    parser.add_argument("--load", type=float, default=1.2, help="uploads per second as a share of capacity")
    parser.add_argument("--server-processes", type=int, default=2)
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--fault-cycles", type=int, default=0,
                        help="times the whole fault schedule runs (default: one per 10 minutes, at least one)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the images")
    parser.add_argument("--results", type=Path, help="append the table, with the command and machine, here")
    parser.add_argument("--ci", action="store_true", help="a ~2-minute run: small numbers, every fault once; "
                        "latencies and recovery times are reported, not judged (too rough to fail on)")
    parser.add_argument("--burst", type=int, default=40, help="uploads of the capacity burst")
    parser.add_argument("--idle-probes", type=int, default=40, help="quiet uploads measured before the flood")
    parser.add_argument("--sample-seconds", type=float, default=5.0, help="memory and Redis sampling interval")
    parser.add_argument("--drain-seconds", type=float, default=300.0, help="longest wait for the backlog")
    parser.add_argument("--trace-memory", type=int, nargs="?", const=10, default=0, metavar="FRAMES",
                        help="heap snapshots of the server children (tracemalloc, FRAMES frames; default 10)")
    parser.add_argument("--trace-every", type=float, default=2.0, metavar="MINUTES",
                        help="with --trace-memory: minutes between snapshots (default 2)")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable of the server processes only (repeatable), e.g. "
                             "MALLOC_ARENA_MAX=2")
    add_stack_arguments(parser)
    args = parser.parse_args()
    if args.ci:
        for name, value in CI.items():
            setattr(args, name, value)
    return args


async def admin_account(t: Traffic, deploy: Deployment) -> Account:
    """An ADMIN made as an operator does (`pixelcheck users create-admin`), signed in through the API."""
    name = f"soak_admin_{secrets.token_hex(3)}"

    def create() -> str:
        with operator_container(deploy.settings) as container:
            return container.identity.create_admin(username=name, email=f"{name}@example.org",
                                                   password=PASSWORD).id

    account = Account(name, await asyncio.to_thread(create), "", "", PASSWORD)
    async with t.channel() as channel:
        await account.sign_in_again(t.calls, channel)
    return account


async def capacity(t: Traffic, account: Account, engine, burst: int) -> float:  # type: ignore[no-untyped-def]
    """Verdicts per second while a burst of uploads (4 at a time) is analysed: from the first verdict's finish
    time to the last one's, so neither the uploads nor the first warm-up count."""
    async with t.channel() as channel:
        pending = list(range(burst))

        async def stream() -> None:
            while pending:
                n = pending.pop()
                await upload(t.calls, channel, account, t.pool.next(), f"burst-{n}.jpg", t.uploads)

        await asyncio.gather(*(stream() for _ in range(4)))
    await asyncio.to_thread(wait_finished, engine, account.user_id, burst, 300)
    with Session(engine) as session:
        first, last = session.execute(select(func.min(Analysis.finish_time), func.max(Analysis.finish_time)).where(
            Analysis.owner_id == account.user_id)).one()
    return (burst - 1) / max(0.1, (last - first).total_seconds())


async def analysed(t: Traffic, account: Account, count: int) -> list[str]:
    """Image ids of count uploads of account, each watched to its verdict."""
    ids = []
    async with t.channel() as channel:
        for n in range(count):
            image_id = await upload(t.calls, channel, account, t.pool.next(), f"report-{n}.jpg", t.uploads)
            if image_id and await watch(t.calls, channel, account, image_id, t.uploads, timeout=120):
                ids.append(image_id)
    return ids


async def heap_snapshots(deploy: Deployment, folder: Path, first_at: float, every: float, stop: asyncio.Event) -> None:
    """A snapshot of every server child at monotonic first_at (a child's first one starts its tracing), then
    every `every` seconds until stop, and one more at stop."""
    wait = first_at - time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, wait))
        taken = await asyncio.to_thread(request_snapshots, folder, deploy.server_children())
        rss = {pid: rss_kib(pid) / 1024 for pid in taken if Path(f"/proc/{pid}").exists()}
        print(f"{time.monotonic() - first_at:5.0f} s into traffic, heap snapshots of server children: "
              f"{', '.join(f'pid {pid} (RSS {mib:.0f} MiB)' for pid, mib in sorted(rss.items())) or 'none'}",
              flush=True)
        wait = every


async def soak(args: argparse.Namespace, deploy: Deployment, heap: Path) -> tuple[list[Row], dict[str, object]]:
    t = Traffic(deploy.stack.address, Calls(), ImagePool(SIZE, seed=args.seed), asyncio.Event())
    engine = create_engine(deploy.settings.resolved_database_url, pool_pre_ping=True)  # outlives a restart
    info: dict[str, object] = {}
    admin = await admin_account(t, deploy)
    async with t.channel() as channel:
        cast = {name: await new_account(channel, f"soak_{name}")
                for name in ("flood", "quiet", "hooks", "pro", "reader", "probe", "burst")}
        await t.calls.run("SetUserRoles", lambda s: auth_pb2_grpc.AuthServiceStub(channel).SetUserRoles(
            auth_pb2.SetUserRolesRequest(user_id=cast["pro"].user_id, roles=[
                common_pb2.ROLE_USER, common_pb2.ROLE_PROFESSIONAL]), metadata=admin.metadata, timeout=s))
        await cast["pro"].sign_in_again(t.calls, channel)
    web = await start_receivers(t)
    endpoints = await register_webhooks(t, web, cast["hooks"])
    info["capacity"] = await capacity(t, cast["burst"], engine, args.burst)
    report_images = await analysed(t, cast["pro"], 5)
    idle = await quiet(t, cast["quiet"], count=args.idle_probes)

    duration = args.minutes * 60
    import_every = 2.0
    rate = max(0.2, args.load * float(info["capacity"]) - 1 / import_every)  # type: ignore[arg-type]
    info.update(duration=duration, flood_rate=rate)
    sampler = Sampler(deploy, args.sample_seconds, heap).start()
    began = time.monotonic()
    actors = [flood(t, cast["flood"], rate), quiet(t, cast["quiet"]),
              region_maps(t, cast["flood"], 4.0), reports(t, cast["pro"], report_images, 8.0),
              url_imports(t, web, cast["hooks"], import_every),
              accounts_and_listing(t, cast["reader"], cast["flood"], 3.0),
              keep_tokens_fresh(t, [cast[n] for n in ("flood", "quiet", "hooks", "pro", "probe")])]
    tasks = [asyncio.create_task(actor) for actor in actors]
    cycles = args.fault_cycles or max(1, round(args.minutes / 10))
    kinds = [] if args.no_faults else list(KINDS) * cycles
    spacing = 0.8 * duration / max(1, len(kinds))
    faults_task = asyncio.create_task(run_faults(deploy, t, cast["probe"], kinds, began + 0.12 * duration, spacing,
                                                 slow_window=min(10.0, spacing / 2)))
    heap_task = (asyncio.create_task(heap_snapshots(deploy, heap, began, args.trace_every * 60,
                                                    t.stop)) if args.trace_memory else None)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(t.stop.wait(), duration)
    t.stop.set()
    if heap_task is not None:
        await heap_task
    info["traffic_seconds"] = time.monotonic() - began
    await asyncio.wait(tasks, timeout=240)
    faults: list[Fault] = await asyncio.wait_for(faults_task, 300)

    drain_began = time.monotonic()
    info["drain"] = await asyncio.to_thread(wait_until, lambda: unfinished(engine) == 0, args.drain_seconds)
    info["webhook_drain"] = await asyncio.to_thread(
        wait_until, lambda: all_delivered(engine, endpoints["normal"]), max(60.0, args.drain_seconds / 2))
    await asyncio.sleep(2)  # the servers' audit writers flush every 0.2 s
    info["drain_seconds"] = time.monotonic() - drain_began
    async with t.channel() as channel:
        await admin.sign_in_again(t.calls, channel)  # its access token from the start has expired in a long run
        verdict = await t.calls.run("VerifyAuditLog", lambda s: audit_pb2_grpc.AuditServiceStub(channel).VerifyAuditLog(
            audit_pb2.VerifyAuditLogRequest(), metadata=admin.metadata, timeout=s), timeout=120)
    samples = sampler.stop()
    await web.stop()

    warm = began + 0.25 * duration
    pending_cap = 500 * 3 + 2000  # USER accounts that upload much, PROFESSIONAL
    rows = [*traffic_rows(t, info, faults, kinds),
            *fairness_rows(idle, t.quiet, faults, t.maps, judged=not args.ci),
            *quiet_breakdown_rows(engine, {"idle": idle, "flood": t.quiet}, t.quiet_uploads),
            *outcome_rows(engine, set(t.uploads.accepted), [(f.kind, f.wall) for f in faults]),
            *unseen_verdict_rows(engine, t.uploads.unseen, [(f.kind, f.wall) for f in faults]),
            Row("audit chain (VerifyAuditLog as admin)", f"ok={verdict.ok}, {verdict.checked_count} events",
                "ok", verdict.ok),
            *webhook_rows(engine, endpoints, cast["hooks"].user_id, t.received),
            *exit_rows(samples), *memory_rows(samples, warm, [f.began for f in faults]),
            *heap_rows(samples, warm, [f.began for f in faults],
                       [f.began for f in faults if f.kind == "server process SIGKILL"]),
            *redis_rows(samples, pending_cap, warm)]
    rows += [Row(f"recovery after {f.kind} ({f.note})",
                 "none within limit" if f.recovery_seconds is None else f"{f.recovery_seconds:.1f} s",
                 f"<= {RECOVERY_TARGET_SECONDS:g} s", f.recovery_seconds is not None
                 and (args.ci or f.recovery_seconds <= RECOVERY_TARGET_SECONDS)) for f in faults]
    engine.dispose()
    return rows, info


def main() -> int:
    args = parse()
    workdir = Path(tempfile.mkdtemp(prefix="pixelcheck-soak-"))
    started = time.monotonic()
    heap = workdir / "heap"
    env = {**dict(item.split("=", 1) for item in args.server_env),
           **server_env(heap, args.trace_memory, args.sample_seconds)}
    with deployment(args, workdir, faults=not args.no_faults, server_env=env) as deploy:
        backend = (f"{'own mariadbd' if deploy.database else 'MariaDB'} + {deploy.redis.kind}" if args.database_url
                   else f"SQLite + {deploy.redis.kind}")
        rows, info = asyncio.run(soak(args, deploy, heap))
    title = (f"Soak ({backend}, {args.server_processes} server processes, 2 inference workers, webhooks worker, "
             f"beat, S3 via moto; {args.minutes:g} min at {args.load:g}x capacity, "
             f"{'no faults' if args.no_faults else 'faults on'}"
             f"{''.join(f', servers with {item}' for item in args.server_env)}; "
             f"{time.monotonic() - started:.0f} s end to end)")
    out = io.StringIO()
    failed = print_results(title, rows, out)
    if args.trace_memory:
        out.write(f"\n### Heap growth of the server children (tracemalloc, {args.trace_memory} frames; "
                  f"snapshots in {heap})\n")
        heap_report(heap, out)
    sys.stdout.write(out.getvalue())
    if args.results:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), platform.machine())
        memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        machine = f"{os.cpu_count()} cores, {cpu}, {memory_gib:.0f} GiB"
        shown = sys.argv[1:]
        if "--results" in shown:
            del shown[shown.index("--results"):shown.index("--results") + 2]
        with args.results.open("a") as results:
            results.write(f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — soak (`scripts/soak {' '.join(shown)}`)"
                          f"\n\nOn {machine}.\n{out.getvalue()}")
    print(f"\n{'FAILED: ' + '; '.join(failed) if failed else 'every check passed'}; the service's logs: {workdir}/logs")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
