"""Revocation of access tokens without a database read per call.

Each server process keeps, in memory, the revoked service tokens that have not expired yet and the token
versions of users whose credentials changed within the last access-token lifetime (older changes cannot
matter: every token issued before them has expired). A daemon thread re-reads recent changes from the
database every `refresh_seconds`, so a revocation, a role change, a deactivation or a sign-out everywhere
made through any server or the CLI is refused by every server within that bound. Checking a call is a
few dictionary look-ups.

The same thread writes the service tokens' last-used times, collected in memory, every
`last_used_flush_seconds` (one batched UPDATE, never a write per call).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.db import unit_of_work
from pixelcheck.errors import Unauthenticated
from pixelcheck.iam.models import ServiceToken, User
from pixelcheck.iam.principal import Principal
from pixelcheck.iam.tokens import LEEWAY_SECONDS, TokenService

log = logging.getLogger("pixelcheck.iam")
# Each refresh re-reads this much before the previous one: a change written with a slightly late clock or
# committed just after the previous read is still seen.
OVERLAP_SECONDS = 10.0
FIRST_LOAD_WAIT_SECONDS = 0.5  # start-up must not wait long for a database that is down


class RevocationCache:
    """This process's view of revoked credentials. `check` is O(1) and never does I/O."""

    def __init__(self, read_sessions: sessionmaker[Session], sessions: sessionmaker[Session], *,
                 access_ttl_seconds: int, refresh_seconds: float, last_used_flush_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._read_sessions = read_sessions
        self._sessions = sessions
        self._horizon = access_ttl_seconds + LEEWAY_SECONDS + OVERLAP_SECONDS
        self._refresh_seconds = refresh_seconds
        self._flush_seconds = last_used_flush_seconds
        self._clock = clock
        self._denied: dict[str, float] = {}  # service token id -> its expiry (Unix time)
        self._versions: dict[str, tuple[int, bool, float]] = {}  # user -> (version, disabled, change time)
        self._last_used: dict[str, float] = {}  # service token id -> last use (Unix time), not yet written
        self._since: float | None = None  # start of the last successful read; None: not loaded yet
        self._last_flush = clock()
        self._stop = threading.Event()
        self._first_load = threading.Event()
        self._failing = False
        self._thread: threading.Thread | None = None

    # -- per call -----------------------------------------------------------------------------------
    def check(self, principal: Principal) -> None:
        """Raises Unauthenticated (TOKEN_REVOKED) for a revoked service token, (TOKEN_OUTDATED) for a
        token issued before its user's roles, status or sessions changed."""
        if principal.token_id in self._denied:
            raise Unauthenticated("This token has been revoked", reason="TOKEN_REVOKED")
        state = self._versions.get(principal.user_id)
        if state is not None and (principal.token_version < state[0] or state[1]):
            raise Unauthenticated("The account's roles, status or sessions changed since this token was "
                                  "issued; refresh it or sign in again", reason="TOKEN_OUTDATED")
        if principal.is_service:
            self._last_used[principal.token_id] = self._clock()

    # -- background ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Keep the state fresh from a daemon thread; wait (at most FIRST_LOAD_WAIT_SECONDS) for the first
        load, so that an unreachable database delays start-up by no more than that."""
        self._thread = threading.Thread(target=self._run, name="pixelcheck-revocations", daemon=True)
        self._thread.start()
        self._first_load.wait(FIRST_LOAD_WAIT_SECONDS)

    def close(self) -> None:
        """Stop the thread and write the last-used times collected so far."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._flush_last_used()

    def _run(self) -> None:
        self.refresh()
        self._first_load.set()
        while not self._stop.wait(self._refresh_seconds):
            self.refresh()
            if self._clock() - self._last_flush >= self._flush_seconds:
                self._flush_last_used()

    def refresh(self) -> None:
        """Read changes since the previous read (everything that still matters on the first); never raises."""
        started = self._clock()
        first = self._since is None
        since = started - self._horizon if first else self._since - OVERLAP_SECONDS  # type: ignore[operator]
        try:
            with unit_of_work(self._read_sessions) as session:
                users = session.execute(select(User.id, User.token_version, User.disabled,
                                               User.credentials_change_time)
                                        .where(User.credentials_change_time >= _utc(since))).all()
                revoked = select(ServiceToken.id, ServiceToken.expire_time).where(
                    ServiceToken.expire_time > _utc(started))
                revoked = revoked.where(ServiceToken.revoke_time.is_not(None) if first
                                        else ServiceToken.revoke_time >= _utc(since))
                tokens = session.execute(revoked).all()
        except Exception as exc:  # the database is down: keep what we know and try again at the next tick
            if not self._failing:  # once per outage, not every tick
                log.warning("cannot refresh token revocations (%s); keeping the previous state",
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            self._failing = True
            return
        if self._failing:
            log.info("token revocations are being refreshed again")
            self._failing = False
        for user_id, version, disabled, changed in users:
            self._versions[user_id] = (version, disabled, changed.timestamp())
        for token_id, expires in tokens:
            self._denied[token_id] = expires.timestamp()
        self._prune(started)
        self._since = started

    def _prune(self, now: float) -> None:
        self._denied = {k: exp for k, exp in self._denied.items() if exp > now - LEEWAY_SECONDS}
        self._versions = {k: v for k, v in self._versions.items() if v[2] > now - self._horizon}

    def _flush_last_used(self) -> None:
        used, self._last_used = self._last_used, {}
        self._last_flush = self._clock()
        if not used:
            return
        statement = (update(ServiceToken).where(ServiceToken.id == bindparam("token_id"))
                     .values(last_used_time=bindparam("used")))
        try:
            with unit_of_work(self._sessions) as session:
                session.connection().execute(statement, [{"token_id": k, "used": _utc(t)} for k, t in used.items()])
        except Exception:  # last-used is advisory: losing one interval's times must not hurt calls
            log.warning("cannot write service tokens' last-used times", exc_info=True)


class AccessVerifier:
    """What the auth interceptor calls: the token's signature and claims, then its revocation state."""

    def __init__(self, tokens: TokenService, revocations: RevocationCache) -> None:
        self._verify = tokens.verify_access
        self._check = revocations.check

    def __call__(self, token: str) -> Principal:
        """The principal token proves. Raises Unauthenticated (see TokenService.verify_access and
        RevocationCache.check)."""
        principal = self._verify(token)
        self._check(principal)
        return principal


def _utc(unix_time: float) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=unix_time)
