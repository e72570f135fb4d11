"""Operator command: `pixelcheck audit verify` walks the stored hash chain, as VerifyAuditLog does.

It reads the database directly (no server needed), in one consistent snapshot, so it can run beside a busy
service; a bad URL, an unreachable server or an outdated schema is answered with one line naming the fix.
Exit code 0 when the chain is intact, 3 when it is broken (1 stays for "could not check").
"""

from __future__ import annotations

import argparse

from pixelcheck.settings import Settings

BROKEN_EXIT_CODE = 3


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    from pixelcheck.bootstrap import operator_container

    with operator_container(settings) as container:
        result = container.audit_trail.verify()
    if result.ok:
        print(f"audit chain intact: {result.checked_count} events checked")
        return 0
    print(f"audit chain BROKEN at event {result.first_broken_event_id} "
          f"({result.checked_count} events before it verified)")
    return BROKEN_EXIT_CODE


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `audit` command group to the `pixelcheck` command."""
    audit = subparsers.add_parser("audit", help="the audit trail").add_subparsers(dest="audit_command",
                                                                                 required=True)
    audit.add_parser("verify", help="walk the audit hash chain and name the first broken event").set_defaults(
        handler=_verify)
