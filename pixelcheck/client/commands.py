"""`pixelcheck client …` (sign in, upload, results, reports) and `pixelcheck health` (container probes).

Exit codes scripts can rely on: 0 ok, 1 the server said no, 2 usage error, 3 server unreachable,
4 an analysis (or report) FAILED. `pixelcheck health` exits 0 only when SERVING, 1 otherwise.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from pixelcheck.client.config import SavedLogin, credentials_path, forget_login, load_login, save_login
from pixelcheck.client.display import (
    ProgressBar,
    clock,
    deliveries_table,
    region_map_line,
    report_line,
    result_details,
    results_table,
    stage_name,
    timeline_text,
    to_json,
    uploads_table,
    webhooks_table,
)
from pixelcheck.client.errors import IntegrityError, PixelCheckError
from pixelcheck.client.retry import NO_RETRY
from pixelcheck.client.sdk import TERMINAL_STATES, PixelCheckClient, Session
from pixelcheck.settings import Settings
from pixelcheck.v1 import common_pb2, ingestion_pb2, results_pb2

OK, REFUSED, USAGE, UNREACHABLE, FAILED = 0, 1, 2, 3, 4
Handler = Callable[[argparse.Namespace, Settings], int]


class UsageError(Exception):
    """The command line cannot be carried out as given (exit code 2)."""


def _connection_options(timeout: float) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--addr", default="", help="server host:port (default: where you logged in, "
                        "else PIXELCHECK_GRPC_ADDRESS)")
    common.add_argument("--ca", default="", metavar="PEM", help="trust this CA certificate (implies TLS)")
    common.add_argument("--tls", action=argparse.BooleanOptionalAction, default=None,
                        help="force TLS on or off (default: TLS unless the host is local)")
    common.add_argument("--timeout", type=float, default=timeout, metavar="S", help="deadline of each call")
    common.add_argument("--json", action="store_true", help="print JSON on stdout, no progress bars")
    return common


def _guarded(handler: Handler) -> Handler:
    """Turn the errors a command can meet into a message on stderr and its exit code."""
    @functools.wraps(handler)
    def run(args: argparse.Namespace, settings: Settings) -> int:
        try:
            return handler(args, settings)
        except UsageError as exc:
            return _fail(args, USAGE, str(exc))
        except PixelCheckError as exc:
            code = UNREACHABLE if exc.unreachable else REFUSED
            return _fail(args, code, str(exc), {"code": exc.code.name, "reason": exc.reason,
                                                "message": exc.message, "request_id": exc.request_id})
        except IntegrityError as exc:
            return _fail(args, REFUSED, str(exc))
        except OSError as exc:
            return _fail(args, USAGE, f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))
    return run


def _fail(args: argparse.Namespace, code: int, message: str, details: dict[str, str] | None = None) -> int:
    if getattr(args, "json", False):
        print(to_json({"error": details or {"message": message}}), file=sys.stderr)
    else:
        print(f"pixelcheck: {message}", file=sys.stderr)
    return code


def _saved_login_or_none() -> SavedLogin | None:
    try:
        return load_login(credentials_path())
    except ValueError:
        return None


def _client(args: argparse.Namespace, settings: Settings, *, signed_in: bool = True) -> PixelCheckClient:
    """A client for --addr (or the saved login's server), continuing the saved session there."""
    path = credentials_path()
    try:
        saved = load_login(path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    address = args.addr or (saved.address if saved else settings.grpc_address)
    if saved is None or saved.address != address:
        saved = None
        if signed_in:
            raise UsageError(f"not signed in to {address}: run `pixelcheck client login --addr {address}`")
    ca_file = args.ca or (saved.ca_file if saved else "")
    ca = Path(ca_file).read_bytes() if ca_file else None

    def keep(session: Session | None) -> None:
        # Refresh tokens rotate: the new one must be saved or the next run would replay a retired one.
        if session is not None:
            save_login(path, SavedLogin(address, session, str(Path(ca_file).resolve()) if ca_file else ""))

    return PixelCheckClient(address, session=saved.session if saved else None, on_session=keep,
                            root_certificates=ca, tls=args.tls, timeout=args.timeout)


def _password(args: argparse.Namespace, *, confirm: bool = False) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Password again: ") != password:
        raise UsageError("the passwords differ")
    return password


@_guarded
def _signup(args: argparse.Namespace, settings: Settings) -> int:
    with _client(args, settings, signed_in=False) as client:
        user = client.sign_up(args.username, args.email, _password(args, confirm=True), args.display_name)
    print(to_json(user) if args.json else f"Created account {user.username} ({user.id}); now run "
          "`pixelcheck client login`")
    return OK


@_guarded
def _login(args: argparse.Namespace, settings: Settings) -> int:
    login = args.login or input("Username or email: ").strip()
    with _client(args, settings, signed_in=False) as client:
        user = client.sign_in(login, _password(args))
    roles = ", ".join(common_pb2.Role.Name(r).removeprefix("ROLE_") for r in user.roles)
    print(to_json(user) if args.json else f"Signed in to {client.address} as {user.username} ({roles})")
    return OK


@_guarded
def _logout(args: argparse.Namespace, settings: Settings) -> int:
    try:
        with _client(args, settings) as client:
            client.sign_out()
    except PixelCheckError as exc:  # forget the tokens here even when the server cannot be told
        print(f"pixelcheck: could not end the session on the server: {exc}", file=sys.stderr)
    forgotten = forget_login(credentials_path())
    print(to_json({"signed_out": forgotten}) if args.json else "Signed out" if forgotten else "Not signed in")
    return OK


def _watch(client: PixelCheckClient, image_id: str, label: str, args: argparse.Namespace
           ) -> results_pb2.AnalysisResult:
    with ProgressBar(f"{label} analysing", enabled=not args.json) as bar:
        for event in client.watch(image_id):
            frames = event.message.rpartition(": ")[2] if event.message.endswith(" frames") else ""
            bar.update(event.progress, f"{stage_name(event.stage)} {frames}".rstrip())
            if event.state in TERMINAL_STATES and event.HasField("result"):
                return event.result
    return client.get_result(image_id)


def _is_url(name: str) -> bool:
    return name.lower().startswith(("http://", "https://"))


@_guarded
def _upload(args: argparse.Namespace, settings: Settings) -> int:
    missing = [name for name in args.files if not _is_url(name) and not Path(name).is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    uploads: list[ingestion_pb2.UploadImageResponse | ingestion_pb2.ImportImageResponse] = []
    results, worst = [], OK
    with _client(args, settings) as client:
        for name in args.files:
            try:
                # A request id makes a retried call safe: the server answers a replay with the first response.
                if _is_url(name):  # the server fetches it (ImportImage)
                    upload = client.import_url(name, external_id=args.external_id, request_id=uuid.uuid4().hex)
                else:
                    with ProgressBar(f"{Path(name).name} uploading", enabled=not args.json) as bar:
                        upload = client.upload(name, request_id=uuid.uuid4().hex, external_id=args.external_id,
                                               progress=bar.bytes_done)
            except PixelCheckError as exc:
                if exc.unreachable:
                    raise
                print(f"pixelcheck: {name}: {exc}", file=sys.stderr)
                worst = REFUSED
                continue
            uploads.append(upload)
            if args.watch:
                results.append(_watch(client, upload.image.id, upload.image.filename, args))
    if any(r.state == common_pb2.ANALYSIS_STATE_FAILED for r in results) and worst == OK:
        worst = FAILED
    if args.json:
        print(to_json([{"upload": u, **({"result": r} if args.watch else {})}
                       for u, r in zip(uploads, results or [None] * len(uploads), strict=True)]))
    elif args.watch:
        print(results_table(results))
        for result in results:
            if result.HasField("timeline"):
                print(f"\n{result.filename}\n{timeline_text(result)}")
    elif uploads:
        print(uploads_table(uploads))
    return worst


@_guarded
def _result(args: argparse.Namespace, settings: Settings) -> int:
    if args.frame is not None and not args.map:
        raise UsageError("--frame chooses the frame of the region map: give --map PNG too")
    with _client(args, settings) as client:
        result = _watch(client, args.image_id, args.image_id[:8], args) if args.wait or args.map else \
            client.get_result(args.image_id)
        picture = None
        if args.map and result.state == common_pb2.ANALYSIS_STATE_SUCCEEDED:
            picture = client.region_map(args.image_id, max_side=args.map_side, wait=args.map_wait,
                                        frame_index=args.frame)
            Path(args.map).write_bytes(picture.png)
            if args.frame is None:  # the result's own map is of the first frame
                result.region_map.CopyFrom(picture.region_map)
    print(to_json(result) if args.json else result_details(result))
    if picture is not None and not args.json:
        print(f"\nRegion map saved to {args.map} ({picture.width}x{picture.height} PNG)")
        if args.frame is not None:
            print(f"Region map of frame {picture.frame.index} at {clock(picture.frame.time_ms)}: "
                  f"{region_map_line(picture.region_map)}")
    return FAILED if result.state == common_pb2.ANALYSIS_STATE_FAILED else OK


@_guarded
def _list(args: argparse.Namespace, settings: Settings) -> int:
    if args.limit <= 0:
        raise UsageError("--limit must be positive")
    found: list[results_pb2.AnalysisResult] = []
    with _client(args, settings) as client:
        for result in client.iter_results(page_size=min(args.limit, 500), label=args.label or 0,
                                          filename_contains=args.filename, order_by=args.order_by,
                                          external_id=args.external_id):
            found.append(result)
            if len(found) >= args.limit:
                break
    print(to_json(found) if args.json else results_table(found) if found else "No results")
    return OK


@_guarded
def _report_create(args: argparse.Namespace, settings: Settings) -> int:
    with _client(args, settings) as client:
        report = client.create_report(args.image_ids, format=args.format, title=args.title)
        if args.wait:
            report = client.wait_for_report(report.id, timeout=args.wait_timeout)
    print(to_json(report) if args.json else report_line(report))
    return FAILED if report.state == common_pb2.REPORT_STATE_FAILED else OK


@_guarded
def _report_download(args: argparse.Namespace, settings: Settings) -> int:
    with _client(args, settings) as client:
        if args.wait:
            report = client.wait_for_report(args.report_id, timeout=args.wait_timeout)
            if report.state == common_pb2.REPORT_STATE_FAILED:
                return _fail(args, FAILED, f"report {report.id} FAILED: {report.failure_reason}")
        with ProgressBar(f"{args.report_id[:8]} downloading", enabled=not args.json) as bar:
            path = client.download_report(args.report_id, args.output, progress=bar.bytes_done)
    print(to_json({"report_id": args.report_id, "path": str(path), "size_bytes": path.stat().st_size})
          if args.json else f"Saved {path}")
    return OK


@_guarded
def _webhook_create(args: argparse.Namespace, settings: Settings) -> int:
    with _client(args, settings) as client:
        created = client.create_webhook(args.url, args.event or None, description=args.description)
    if args.json:
        print(to_json(created))
    else:
        print(webhooks_table([created.endpoint]))
        print(f"\nSigning secret (shown only now, store it): {created.secret}")
    return OK


@_guarded
def _webhook_list(args: argparse.Namespace, settings: Settings) -> int:
    with _client(args, settings) as client:
        endpoints = client.list_webhooks()
    print(to_json(endpoints) if args.json else webhooks_table(endpoints) if endpoints else "No webhook endpoints")
    return OK


@_guarded
def _webhook_delete(args: argparse.Namespace, settings: Settings) -> int:
    with _client(args, settings) as client:
        client.delete_webhook(args.endpoint_id)
    print(to_json({"deleted": args.endpoint_id}) if args.json else f"Deleted {args.endpoint_id}")
    return OK


@_guarded
def _webhook_rotate(args: argparse.Namespace, settings: Settings) -> int:
    with _client(args, settings) as client:
        rotated = client.rotate_webhook_secret(args.endpoint_id)
    print(to_json(rotated) if args.json else
          f"New signing secret (shown only now; the old one still signs for 24 hours): {rotated.secret}")
    return OK


@_guarded
def _webhook_deliveries(args: argparse.Namespace, settings: Settings) -> int:
    with _client(args, settings) as client:
        page = client.webhook_deliveries(args.endpoint_id, page_size=args.limit)
    print(to_json(list(page.deliveries)) if args.json else
          deliveries_table(page.deliveries) if page.deliveries else "No deliveries yet")
    return OK


def _health(args: argparse.Namespace, settings: Settings) -> int:
    """0 only when SERVING, else 1 (unreachable included): what a container probe needs."""
    try:
        ca = Path(args.ca).read_bytes() if args.ca else None
    except OSError as exc:
        return _fail(args, USAGE, f"{args.ca}: {exc.strerror}")
    saved = _saved_login_or_none() if args.use_saved_login else None
    address = args.addr or (saved.address if saved else settings.grpc_address)
    try:
        with PixelCheckClient(address, root_certificates=ca, tls=args.tls, timeout=args.timeout,
                              retry=NO_RETRY) as client:
            status = client.health(args.service)
    except PixelCheckError as exc:
        status = "UNREACHABLE" if exc.unreachable else exc.code.name
    print(to_json({"address": address, "service": args.service, "status": status}) if args.json else status)
    return OK if status == "SERVING" else REFUSED


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `client` and `health` to the `pixelcheck` command."""
    common = _connection_options(timeout=30.0)
    probe = _connection_options(timeout=5.0)  # a probe must answer before the orchestrator gives up
    health = subparsers.add_parser("health", parents=[probe], help="exit 0 only when the server is SERVING")
    health.add_argument("--service", default="", help='service name, e.g. pixelcheck.v1.IngestionService '
                        '(default: "" = the whole server)')
    health.set_defaults(handler=_health, use_saved_login=False)

    client = subparsers.add_parser("client", help="use a PixelCheck server: sign in, upload, results, reports",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = client.add_subparsers(dest="client_command", required=True)

    def command(name: str, handler: Handler, help: str, parent: argparse._SubParsersAction = sub
                ) -> argparse.ArgumentParser:  # type: ignore[type-arg]
        parser = parent.add_parser(name, parents=[common], help=help)
        parser.set_defaults(handler=handler)
        return parser

    signup = command("signup", _signup, "create an account")
    signup.add_argument("username")
    signup.add_argument("--email", required=True)
    signup.add_argument("--display-name", default="")
    signup.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    login = command("login", _login, "sign in and save the session (0600) for later commands")
    login.add_argument("login", nargs="?", default="", help="username or email (prompted when absent)")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    command("logout", _logout, "end the session and delete the saved tokens")
    upload = command("upload", _upload, "upload images (files, or http(s) URLs the server fetches) for analysis")
    upload.add_argument("files", nargs="+", metavar="FILE_OR_URL")
    upload.add_argument("--external-id", default="", metavar="ID", help="an id of your own, kept with each image")
    upload.add_argument("--watch", action="store_true", help="wait for each verdict and show it")
    result = command("result", _result, "show one analysis")
    result.add_argument("image_id")
    result.add_argument("--wait", action="store_true", help="wait until the analysis has finished")
    result.add_argument("--map", default="", metavar="PNG", help="save the region map picture (the image with "
                        "each region coloured by its P(AI), and a legend) to this file; implies --wait")
    result.add_argument("--map-side", type=int, default=0, metavar="PX",
                        help="longest side of the region map picture (default 800, at most 1600)")
    result.add_argument("--map-wait", type=float, default=120.0, metavar="S",
                        help="how long to wait for the region map after the verdict (default 120)")
    result.add_argument("--frame", type=int, default=None, metavar="N",
                        help="with --map: the region map of frame N of an animation or clip, one its timeline "
                        "read (the frame numbers the timeline shows); default: the first frame")
    listing = command("list", _list, "list your results, newest first")
    listing.add_argument("--label", choices=["ai", "real"], default="")
    listing.add_argument("--filename", default="", help="only files whose name contains this")
    listing.add_argument("--external-id", default="", metavar="ID", help="only images given this external id")
    listing.add_argument("--order-by", choices=["create_time desc", "confidence desc"], default="")
    listing.add_argument("--limit", type=int, default=50)
    health_client = command("health", _health, "show the server's health status")
    health_client.add_argument("--service", default="")
    health_client.set_defaults(use_saved_login=True)

    reports = sub.add_parser("report", help="create and download PDF/CSV reports (PROFESSIONAL)")
    report_sub = reports.add_subparsers(dest="report_command", required=True)
    create = command("create", _report_create, "request a report of some images", report_sub)
    create.add_argument("image_ids", nargs="+", metavar="IMAGE_ID")
    create.add_argument("--format", choices=["pdf", "csv"], default="pdf")
    create.add_argument("--title", default="")
    download = command("download", _report_download, "save a READY report", report_sub)
    download.add_argument("report_id")
    download.add_argument("-o", "--output", default=".", help="file or folder (default: current folder)")
    for parser in (create, download):
        parser.add_argument("--wait", action="store_true", help="wait until the report is READY or FAILED")
        parser.add_argument("--wait-timeout", type=float, default=120.0, metavar="S")

    webhooks = sub.add_parser("webhook", help="endpoints PixelCheck calls when an analysis or report is done")
    webhook_sub = webhooks.add_subparsers(dest="webhook_command", required=True)
    hook = command("create", _webhook_create, "register an endpoint; prints its signing secret once", webhook_sub)
    hook.add_argument("url")
    hook.add_argument("--event", action="append", default=[],
                      choices=["analysis.succeeded", "analysis.failed", "report.ready"],
                      help="an event to deliver (repeatable; default analysis.succeeded)")
    hook.add_argument("--description", default="")
    command("list", _webhook_list, "list your endpoints (and why one was disabled)", webhook_sub)
    for name, handler, text in (("delete", _webhook_delete, "remove an endpoint"),
                                ("rotate", _webhook_rotate, "give an endpoint a new signing secret"),
                                ("deliveries", _webhook_deliveries, "an endpoint's deliveries, newest first")):
        parser = command(name, handler, text, webhook_sub)
        parser.add_argument("endpoint_id")
        if name == "deliveries":
            parser.add_argument("--limit", type=int, default=50)
