"""Operator commands: `pixelcheck users create-admin|list|set-roles|disable|enable|sign-out-everywhere` and
`pixelcheck token issue-service|list|revoke`.

Each checks the database first, so a bad URL, an unreachable server or a missing or outdated schema is
answered with one line naming the problem and its fix (exit code 1), never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pixelcheck.errors import DomainError
from pixelcheck.iam.models import ROLE_NAMES
from pixelcheck.iam.principal import ADMIN, Principal
from pixelcheck.iam.service import Identity
from pixelcheck.iam.service_tokens import ServiceTokens
from pixelcheck.settings import Settings

_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds in "3600", "90s", "15m", "12h" or "30d"; raises argparse.ArgumentTypeError otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match or int(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration like 3600, 15m, 12h or 30d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class Operator:
    """What an operator command works with."""

    identity: Identity
    service_tokens: ServiceTokens

    @property
    def name(self) -> str:
        """How the operator appears in records: operator:<login>."""
        try:
            return f"operator:{getpass.getuser()}"
        except (KeyError, OSError):  # no passwd entry (some containers)
            return "operator:unknown"


def _with_identity(action: Callable[[Operator, argparse.Namespace], int]) -> Callable[..., int]:
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        from pixelcheck.bootstrap import operator_container

        try:
            with operator_container(settings) as container:
                return action(Operator(container.identity, container.service_tokens), args)
        except DomainError as exc:
            print(f"pixelcheck: {exc.message}", file=sys.stderr)
            return 1

    return handler


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat the password: ") != first:
        raise DomainError("The passwords differ", reason="PASSWORDS_DIFFER")
    return first


def _create_admin(op: Operator, args: argparse.Namespace) -> int:
    account = op.identity.create_admin(username=args.username, email=args.email, password=_read_password(args),
                                    display_name=args.display_name)
    print(f"created admin {account.username} ({account.id})")
    return 0


def _list_users(op: Operator, args: argparse.Namespace) -> int:
    print(f"{'ID':32}  {'USERNAME':24}  {'EMAIL':32}  {'ROLES':24}  CREATED")
    for account in op.identity.list_accounts(limit=args.limit):
        kind = " (service)" if account.is_service else ""
        kind += " (disabled)" if account.disabled else ""
        print(f"{account.id:32}  {account.username:24}  {account.email:32}  {','.join(account.roles):24}  "
              f"{account.create_time:%Y-%m-%d %H:%M}{kind}")
    return 0


def _set_roles(op: Operator, args: argparse.Namespace) -> int:
    account = op.identity.find_account(args.user)
    changed = op.identity.set_roles(user_id=account.id, roles=[r.upper() for r in args.roles])
    print(f"{changed.username}: {', '.join(changed.roles)}")
    return 0


def _set_disabled(disabled: bool) -> Callable[[Operator, argparse.Namespace], int]:
    def action(op: Operator, args: argparse.Namespace) -> int:
        account = op.identity.find_account(args.user)
        changed = op.identity.set_roles(user_id=account.id, roles=[], disabled=disabled)
        print(f"{changed.username}: {'disabled, every session ended' if changed.disabled else 'enabled'}")
        return 0

    return action


def _sign_out_everywhere(op: Operator, args: argparse.Namespace) -> int:
    account = op.identity.find_account(args.user)
    # The operator acts with an admin's authority, under no user id of its own.
    op.identity.sign_out_everywhere(caller=Principal(user_id="", roles=frozenset({ADMIN})), user_id=account.id)
    print(f"{account.username}: every session ended; access tokens are refused within seconds")
    return 0


def _issue_service(op: Operator, args: argparse.Namespace) -> int:
    issued = op.service_tokens.issue(name=args.name, ttl_seconds=args.ttl, issued_by=op.name)
    print(f"service token {issued.record.id} for {issued.account.username} ({issued.account.id}), valid until "
          f"{issued.record.expire_time:%Y-%m-%d %H:%M} UTC:", file=sys.stderr)
    print(issued.token)  # alone on stdout, for `TOKEN=$(pixelcheck token issue-service …)`
    return 0


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "-"


def _list_tokens(op: Operator, args: argparse.Namespace) -> int:
    print(f"{'ID':32}  {'NAME':20}  {'ISSUED':16}  {'EXPIRES':16}  {'LAST USED':16}  {'REVOKED':16}  ISSUED BY")
    page_token, shown = "", 0
    while shown < args.limit:
        page = op.service_tokens.list_tokens(size=min(500, args.limit - shown), page_token=page_token,
                                             service_name=args.service)
        for t in page.tokens:
            print(f"{t.id:32}  {t.name:20}  {_when(t.create_time):16}  {_when(t.expire_time):16}  "
                  f"{_when(t.last_used_time):16}  {_when(t.revoke_time):16}  {t.issued_by}")
        shown += len(page.tokens)
        page_token = page.next_page_token
        if not page_token:
            break
    return 0


def _revoke_token(op: Operator, args: argparse.Namespace) -> int:
    token = op.service_tokens.revoke(token_id=args.id.strip().lower(), revoked_by=op.name)
    print(f"revoked service token {token.id} of {token.name} at {_when(token.revoke_time)} UTC "
          "(every server refuses it within seconds)")
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

    for verb, disabled, what in (("disable", True, "disable an account and end every session"),
                                 ("enable", False, "enable a disabled account again")):
        toggle = users.add_parser(verb, help=what)
        toggle.add_argument("user", help="user id or username")
        toggle.set_defaults(handler=_with_identity(_set_disabled(disabled)))

    everywhere = users.add_parser("sign-out-everywhere", help="end every session of an account")
    everywhere.add_argument("user", help="user id or username")
    everywhere.set_defaults(handler=_with_identity(_sign_out_everywhere))

    token = subparsers.add_parser("token", help="issue, list and revoke service tokens").add_subparsers(
        dest="token_command", required=True)
    service = token.add_parser("issue-service", help="issue a long-lived token with role SERVICE")
    service.add_argument("name", help="the calling service's name (3-64 of a-z, 0-9, '_', '.', '-')")
    service.add_argument("--ttl", type=parse_duration, default=parse_duration("90d"),
                         help="lifetime: seconds or 15m, 12h, 30d (default 90d)")
    service.set_defaults(handler=_with_identity(_issue_service))

    listing = token.add_parser("list", help="list service tokens, newest first")
    listing.add_argument("--service", default="", help="only this service's tokens")
    listing.add_argument("--limit", type=int, default=1000)
    listing.set_defaults(handler=_with_identity(_list_tokens))

    revoke = token.add_parser("revoke", help="revoke a service token (every server refuses it within seconds)")
    revoke.add_argument("id", help="the token's id, as `pixelcheck token list` shows it")
    revoke.set_defaults(handler=_with_identity(_revoke_token))
