"""Work outside the database (files, objects) that must follow the fate of a session's transaction."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session


def on_outcome(session: Session, *, committed: Callable[[], None] | None = None,
               rolled_back: Callable[[], None] | None = None) -> None:
    """Run committed() once the session's outermost transaction commits, or rolled_back() once it rolls back
    (savepoints do not count). For work outside the database that must follow the transaction's fate."""
    actions = session.info.get(_ACTIONS)
    if actions is None:
        actions = session.info[_ACTIONS] = ([], [])
        event.listen(session, "after_commit", _run_committed)
        event.listen(session, "after_soft_rollback", _run_rolled_back)
    if committed is not None:
        actions[0].append(committed)
    if rolled_back is not None:
        actions[1].append(rolled_back)


_ACTIONS = "pixelcheck.blob_actions"


def _run_committed(session: Session) -> None:
    _run(session, committed=True)


def _run_rolled_back(session: Session, previous_transaction: object) -> None:
    if getattr(previous_transaction, "nested", False) or getattr(previous_transaction, "parent", None) is not None:
        return  # a savepoint: the outer transaction may still commit
    _run(session, committed=False)


def _run(session: Session, *, committed: bool) -> None:
    """Run (and forget) the actions for this outcome; the others are forgotten too."""
    commit_actions, rollback_actions = session.info[_ACTIONS]
    pending = list(commit_actions if committed else rollback_actions)
    commit_actions.clear()
    rollback_actions.clear()
    for action in pending:
        action()
