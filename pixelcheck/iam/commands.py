"""Operator commands: `pixelcheck users create-admin|list|set-roles` and `pixelcheck token issue-service`."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from collections.abc import Callable

from pixelcheck.errors import DomainError
from pixelcheck.iam.models import ROLE_NAMES
from pixelcheck.iam.service import Identity
from pixelcheck.settings import Settings

_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds in "3600", "90s", "15m", "12h" or "30d"; raises argparse.ArgumentTypeError otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match or int(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration like 3600, 15m, 12h or 30d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _with_identity(action: Callable[[Identity, argparse.Namespace], int]) -> Callable[..., int]:
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        from pixelcheck.bootstrap import build_container

        container = build_container(settings, role="cli")
        try:
            return action(container.identity, args)
        except DomainError as exc:
            print(f"pixelcheck: {exc.message}", file=sys.stderr)
            return 1
        finally:
            container.close()  # also writes the audit events recorded by the command

    return handler


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat the password: ") != first:
        raise DomainError("The passwords differ", reason="PASSWORDS_DIFFER")
    return first


def _create_admin(identity: Identity, args: argparse.Namespace) -> int:
    account = identity.create_admin(username=args.username, email=args.email, password=_read_password(args),
                                    display_name=args.display_name)
    print(f"created admin {account.username} ({account.id})")
    return 0


def _list_users(identity: Identity, args: argparse.Namespace) -> int:
    print(f"{'ID':32}  {'USERNAME':24}  {'EMAIL':32}  {'ROLES':24}  CREATED")
    for account in identity.list_accounts(limit=args.limit):
        kind = " (service)" if account.is_service else ""
        print(f"{account.id:32}  {account.username:24}  {account.email:32}  {','.join(account.roles):24}  "
              f"{account.create_time:%Y-%m-%d %H:%M}{kind}")
    return 0


def _set_roles(identity: Identity, args: argparse.Namespace) -> int:
    account = identity.find_account(args.user)
    changed = identity.set_roles(user_id=account.id, roles=[r.upper() for r in args.roles])
    print(f"{changed.username}: {', '.join(changed.roles)}")
    return 0


def _issue_service(identity: Identity, args: argparse.Namespace) -> int:
    account, issued = identity.issue_service_token(name=args.name, ttl_seconds=args.ttl)
    print(f"service token for {account.username} ({account.id}), valid until "
          f"{issued.expire_time:%Y-%m-%d %H:%M} UTC:", file=sys.stderr)
    print(issued.token)  # alone on stdout, for `TOKEN=$(pixelcheck token issue-service …)`
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `users` and `token` command groups to the `pixelcheck` command."""
    users = subparsers.add_parser("users", help="manage accounts").add_subparsers(dest="users_command",
                                                                                  required=True)
    admin = users.add_parser("create-admin", help="create an account with role ADMIN")
    admin.add_argument("--username", required=True)
    admin.add_argument("--email", required=True)
    admin.add_argument("--display-name", default="")
    admin.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    admin.set_defaults(handler=_with_identity(_create_admin))

    listing = users.add_parser("list", help="list accounts, oldest first")
    listing.add_argument("--limit", type=int, default=1000)
    listing.set_defaults(handler=_with_identity(_list_users))

    roles = users.add_parser("set-roles", help="replace an account's roles")
    roles.add_argument("user", help="user id or username")
    roles.add_argument("roles", nargs="+", type=str.upper, choices=[r for r in ROLE_NAMES if r != "SERVICE"],
                       metavar="ROLE", help="USER, PROFESSIONAL or ADMIN")
    roles.set_defaults(handler=_with_identity(_set_roles))

    token = subparsers.add_parser("token", help="issue tokens").add_subparsers(dest="token_command",
                                                                               required=True)
    service = token.add_parser("issue-service", help="issue a long-lived token with role SERVICE")
    service.add_argument("name", help="the calling service's name (3-64 of a-z, 0-9, '_', '.', '-')")
    service.add_argument("--ttl", type=parse_duration, default=parse_duration("90d"),
                         help="lifetime: seconds or 15m, 12h, 30d (default 90d)")
    service.set_defaults(handler=_with_identity(_issue_service))
