"""The `pixelcheck` command: serve, worker, beat, dev, db, and the operator commands of each context."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pixelcheck.settings import Settings, SettingsError

if TYPE_CHECKING:
    from celery import Celery

Handler = Callable[[argparse.Namespace, Settings], int]


def _prepare_spool(command: str, settings: Settings) -> bool:
    """The spool folder for clips, made and swept of what killed processes left; False (said why) when unusable."""
    from pixelcheck.ingestion.spool import SpoolFolderError, prepare_spool

    try:  # a file older than twice the longest analysis belongs to no live upload, import or analysis
        prepare_spool(settings.spool_dir, stale_after_seconds=2 * max(settings.video_time_limit_seconds,
                                                                      settings.task_time_limit_seconds))
    except SpoolFolderError as exc:
        print(f"pixelcheck {command}: {exc}", file=sys.stderr)
        return False
    return True


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from pixelcheck.api.supervisor import Supervisor, process_count

    if not _prepare_spool("serve", settings):
        return 1
    processes = process_count(settings, args.processes)
    if processes > 1 and not args.supervised:
        return Supervisor(settings, processes).run()
    from pixelcheck.api.server import serve

    asyncio.run(serve(settings, supervised=args.supervised))
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from pixelcheck.keys import RedisKeys
    from pixelcheck.malloc_arenas import cap_malloc_arenas
    from pixelcheck.worker import celery_app_for_worker, serve_webhooks_only

    keys = RedisKeys(settings.redis_key_prefix)
    hostname = args.hostname or ("pixelcheck-webhooks@%h" if args.webhooks else "pixelcheck@%h")
    if args.webhooks:  # HTTP calls that may hang until their timeout: many threads, never an inference slot
        serve_webhooks_only()
        cap_malloc_arenas(settings.malloc_arenas)
        queue, pool, concurrency = keys.webhook_queue, args.pool or "threads", (
            args.concurrency or settings.webhook_worker_concurrency)
    else:
        from pixelcheck.analysis.detector import DetectorLoadError, load_detector
        from pixelcheck.bootstrap import model_dir

        try:  # a worker that cannot analyse must not take tasks from the queue
            load_detector(model_dir(settings))
        except DetectorLoadError as exc:
            print(f"pixelcheck worker: cannot load the detector: {exc}", file=sys.stderr)
            return 1
        if not _prepare_spool("worker", settings):
            return 1
        queue, pool, concurrency = keys.celery_queue, args.pool, args.concurrency or settings.worker_concurrency

    app = celery_app_for_worker()
    argv = ["worker", "--loglevel", settings.log_level, "--queues", queue, "--concurrency", str(concurrency),
            "--without-gossip", "--without-mingle", "--hostname", hostname]
    if pool:
        argv += ["--pool", pool]
    return _run_worker(app, argv)


def _run_worker(app: Celery, argv: list[str]) -> int:
    """Run the Celery worker and return its exit code (non-zero after an unrecoverable error).

    app.worker_main() drops the code the worker command exits with; the worker itself still knows it when
    it sends worker_shutdown.
    """
    from celery import signals

    exit_codes: list[int] = []

    def remember_exit_code(sender: Any, **_: Any) -> None:
        exit_codes.append(int(sender.exitcode or 0))

    signals.worker_shutdown.connect(remember_exit_code, weak=False)
    try:
        app.worker_main(argv)
    finally:
        signals.worker_shutdown.disconnect(remember_exit_code)
    return exit_codes[-1] if exit_codes else 0


def _beat(args: argparse.Namespace, settings: Settings) -> int:
    from pixelcheck.worker import celery_app_for_worker

    app = celery_app_for_worker()
    schedule = f"{settings.data_dir}/celerybeat-schedule"
    app.start(["beat", "--loglevel", settings.log_level, "--schedule", schedule])
    return 0


def _dev(args: argparse.Namespace, settings: Settings) -> int:
    from pixelcheck.devstack import run_dev

    return run_dev(settings)


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from pixelcheck.db import current_revision, explained_problems, upgrade

    url = settings.resolved_database_url
    with explained_problems(url):
        upgrade(url)
        print(f"database at revision {current_revision(url)}")
    return 0


def _db_check(args: argparse.Namespace, settings: Settings) -> int:
    from pixelcheck.db import check_schema, current_revision

    url = settings.resolved_database_url
    check_schema(url)
    print(f"database reachable, schema up to date (revision {current_revision(url)})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pixelcheck", description="PixelCheck: is this image AI-generated?")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gRPC server")
    serve.add_argument("--processes", type=int, default=None,
                       help="server processes sharing the port (default: PIXELCHECK_SERVER_PROCESSES; 0 = one "
                            "per core)")
    serve.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)  # a child of the parent
    serve.set_defaults(handler=_serve)
    worker = sub.add_parser("worker", help="run a Celery inference worker (or, with --webhooks, a webhook sender)")
    worker.add_argument("--webhooks", action="store_true",
                        help="deliver webhooks instead of analysing: the webhook queue, a thread pool "
                             "(default concurrency: PIXELCHECK_WEBHOOK_WORKER_CONCURRENCY)")
    worker.add_argument("--concurrency", type=int, default=0, help="worker processes or threads (default: settings)")
    worker.add_argument("--pool", choices=["prefork", "solo", "threads"], default="")
    worker.add_argument("--hostname", default="")
    worker.set_defaults(handler=_worker)
    sub.add_parser("beat", help="run the periodic scheduler (reconciler, retention)").set_defaults(handler=_beat)
    sub.add_parser("dev", help="run everything locally: SQLite, embedded Redis, worker, server").set_defaults(
        handler=_dev)
    db = sub.add_parser("db", help="database maintenance").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply migrations up to the latest").set_defaults(handler=_db_upgrade)
    db.add_parser("check", help="check that the database is reachable and migrated").set_defaults(
        handler=_db_check)
    for add_commands in _context_commands():
        add_commands(sub)
    return parser


def _context_commands() -> list[Callable[[argparse._SubParsersAction], None]]:  # type: ignore[type-arg]
    found = []
    for module in ("pixelcheck.iam.commands", "pixelcheck.audit.commands", "pixelcheck.client.commands"):
        try:
            mod = __import__(module, fromlist=["add_commands"])
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise  # a missing dependency inside the module is a real error
            continue
        found.append(mod.add_commands)
    return found


def configure_logging(settings: Settings) -> None:
    from pixelcheck.observability import configure_logging as configure

    configure(settings)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"pixelcheck: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    handler: Handler = args.handler
    from pixelcheck.db import DatabaseProblem

    try:
        return handler(args, settings)
    except DatabaseProblem as problem:  # one line naming the problem and its fix, never a traceback
        print(f"pixelcheck: {problem}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
