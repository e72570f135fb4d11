"""Identity use cases: sign-up, sign-in, token refresh and sign-out, roles and deactivation.

Blocking code (SQLAlchemy, argon2, Redis): the gRPC edge runs these methods off the event loop.
Passwords are hashed and checked outside database transactions, so SQLite's write lock is never held
while argon2 runs.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.audit import actions
from pixelcheck.db import new_id, unit_of_work, utcnow
from pixelcheck.errors import (
    AlreadyExists,
    FailedPrecondition,
    Forbidden,
    NotFound,
    TooLarge,
    Unauthenticated,
    require_fields,
)
from pixelcheck.iam import validation
from pixelcheck.iam.cache import TtlCache
from pixelcheck.iam.lockout import SigninThrottle
from pixelcheck.iam.models import ROLE_NAMES, RefreshToken, ServiceToken, User, UserRole
from pixelcheck.iam.passwords import Passwords
from pixelcheck.iam.principal import ADMIN, SERVICE, USER, Principal
from pixelcheck.iam.tokens import TokenService

LOGIN_MAX = 254
# Identity events beyond the shared list in pixelcheck.audit.actions.
ADMIN_CREATED = "user.admin_created"  # target user:<id>; by an operator
SIGNED_OUT = "user.signed_out"  # target session:<family id>
SIGNED_OUT_EVERYWHERE = "user.signed_out_everywhere"  # target user:<id>; by the user or an admin
SIGN_IN_THROTTLED = "user.sign_in_throttled"  # payload: rule (login_address, login, address), login, address
ACCOUNT_DISABLED = "user.disabled"  # target user:<id>
ACCOUNT_ENABLED = "user.enabled"  # target user:<id>
REFRESH_REUSED = "token.reuse_detected"  # target session:<family id>; the family was revoked


class AuditLog(Protocol):
    def record(self, action: str, *, actor_id: str = "", target: str = "", payload: dict[str, Any] | None = None,
               request_id: str = "", peer: str = "") -> None:
        """Record one domain event; must not block or raise."""


@dataclass(frozen=True)
class Origin:
    """Where a request came from, for throttling and the audit trail."""

    request_id: str = ""
    peer: str = ""
    client_address: str = ""  # the peer's host, or the client behind trusted proxies (x-forwarded-for)


@dataclass(frozen=True)
class Account:
    """A user as the outside world sees it (never the password hash)."""

    id: str
    username: str
    email: str
    display_name: str
    roles: tuple[str, ...]
    create_time: datetime
    is_service: bool = False
    disabled: bool = False

    @classmethod
    def of(cls, user: User) -> Account:
        return cls(id=user.id, username=user.username, email=user.email, display_name=user.display_name,
                   roles=tuple(user.role_names), create_time=user.create_time, is_service=user.is_service,
                   disabled=user.disabled)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in_seconds: int


@dataclass(frozen=True)
class SignedIn:
    tokens: TokenPair
    account: Account


def _digest(refresh_token: str) -> str:
    # Refresh tokens are 256 random bits: a fast hash suffices (no dictionary to attack, unlike passwords).
    return hashlib.sha256(refresh_token.encode()).hexdigest()


class Identity:
    """One method per identity use case. Raises pixelcheck.errors.DomainError subclasses only."""

    def __init__(self, *, sessions: sessionmaker[Session], read_sessions: sessionmaker[Session],
                 passwords: Passwords, tokens: TokenService, throttle: SigninThrottle, audit: AuditLog,
                 refresh_ttl_seconds: int, account_cache_seconds: float = 0.0) -> None:
        self._sessions = sessions
        self._read_sessions = read_sessions
        self._passwords = passwords
        self._tokens = tokens
        self._throttle = throttle
        self._audit = audit
        self._refresh_ttl = timedelta(seconds=refresh_ttl_seconds)
        # Accounts read by id, for GetCurrentUser: another process's change shows after this many seconds.
        self._accounts: TtlCache[Account] = TtlCache(account_cache_seconds)

    # -- accounts ---------------------------------------------------------------------------------
    def sign_up(self, *, username: str, email: str, password: str, display_name: str,
                origin: Origin = Origin()) -> Account:
        """Create an account with role USER.

        Raises InvalidInput listing every bad field, AlreadyExists (USERNAME_TAKEN, EMAIL_TAKEN).
        """
        account = self._create(username=username, email=email, password=password, display_name=display_name,
                               roles=(USER,))
        self._audit.record(actions.USER_SIGNED_UP, actor_id=account.id, target=f"user:{account.id}",
                           payload={"username": account.username}, request_id=origin.request_id,
                           peer=origin.peer)
        return account

    def create_admin(self, *, username: str, email: str, password: str, display_name: str = "") -> Account:
        """Create an account with roles ADMIN and USER (operator command). Raises like sign_up."""
        account = self._create(username=username, email=email, password=password, display_name=display_name,
                               roles=(ADMIN, USER))
        self._audit.record(ADMIN_CREATED, target=f"user:{account.id}", payload={"username": account.username})
        return account

    def _create(self, *, username: str, email: str, password: str, display_name: str,
                roles: tuple[str, ...]) -> Account:
        email = validation.normalise_email(email)
        display_name = display_name.strip()
        require_fields(validation.sign_up_violations(username=username, email=email, password=password,
                                                     display_name=display_name))
        password_hash = self._passwords.hash(password)
        try:
            with unit_of_work(self._sessions) as session:
                _refuse_taken(session, username, email)
                user = User(id=new_id(), username=username, email=email,
                            display_name=display_name or username, password_hash=password_hash,
                            roles=[UserRole(role_name=r) for r in sorted(roles)])
                session.add(user)
                session.flush()
                return Account.of(user)
        except IntegrityError:  # a concurrent sign-up took the name between the check and the insert
            raise AlreadyExists("That username or email is already registered",
                                reason="USERNAME_OR_EMAIL_TAKEN") from None

    def get_account(self, user_id: str) -> Account:
        """The account with this id, read at most account_cache_seconds ago. Raises NotFound (USER_NOT_FOUND)."""
        cached = self._accounts.get(user_id)
        if cached is not None:
            return cached
        # One round trip for the user and its roles, as plain rows (no ORM objects on this hot read).
        query = (select(User.username, User.email, User.display_name, User.create_time, User.is_service,
                        UserRole.role_name)
                 .outerjoin(UserRole, UserRole.user_id == User.id).where(User.id == user_id))
        with unit_of_work(self._read_sessions) as session:
            rows = session.execute(query).all()
        if not rows:
            raise NotFound("The account no longer exists", reason="USER_NOT_FOUND")
        first = rows[0]
        account = Account(id=user_id, username=first.username, email=first.email, display_name=first.display_name,
                          roles=tuple(sorted(r.role_name for r in rows if r.role_name is not None)),
                          create_time=first.create_time, is_service=first.is_service)
        self._accounts.put(user_id, account)
        return account

    def cached_account(self, user_id: str) -> Account | None:
        """The account get_account would return without reading the database, or None (never blocks)."""
        return self._accounts.get(user_id)

    def find_account(self, id_or_username: str) -> Account:
        """The account with this id or username. Raises NotFound (USER_NOT_FOUND)."""
        with unit_of_work(self._read_sessions) as session:
            user = session.scalars(select(User).where(
                or_(User.id == id_or_username, User.username == id_or_username))).first()
            if user is None:
                raise NotFound(f"No account {id_or_username!r}", reason="USER_NOT_FOUND")
            return Account.of(user)

    def list_accounts(self, *, limit: int = 1000) -> list[Account]:
        """Accounts, oldest first."""
        with unit_of_work(self._read_sessions) as session:
            users = session.scalars(select(User).order_by(User.create_time, User.id).limit(limit))
            return [Account.of(u) for u in users]

    def set_roles(self, *, user_id: str, roles: list[str], disabled: bool | None = None, actor_id: str = "",
                  origin: Origin = Origin()) -> Account:
        """Replace a person's roles and, when disabled is not None, disable or enable the account.
        actor_id is the admin doing it ("" for the operator CLI). Roles may be empty when only disabled
        changes. Any change retires the user's access tokens (servers refuse them within seconds); disabling
        also ends every session.

        Raises InvalidInput (no roles, unknown role, SERVICE, malformed id), NotFound (USER_NOT_FOUND),
        FailedPrecondition (SERVICE_PRINCIPAL, CANNOT_REMOVE_OWN_ADMIN, CANNOT_DISABLE_SELF).
        """
        wanted = set(roles)
        violations = validation.id_violations("user_id", user_id)
        if not wanted and disabled is None:
            violations.append(("roles", "must name at least one role"))
        elif unknown := sorted(wanted - set(ROLE_NAMES)):
            violations.append(("roles", f"unknown roles: {', '.join(unknown)}"))
        elif SERVICE in wanted:
            violations.append(("roles", "SERVICE is only for service principals, issued by an operator"))
        require_fields(violations)
        with unit_of_work(self._sessions) as session:
            user = session.get(User, user_id, with_for_update=True)
            if user is None:
                raise NotFound("No such user", reason="USER_NOT_FOUND")
            if user.is_service:
                raise FailedPrecondition("Service principals keep the role SERVICE", reason="SERVICE_PRINCIPAL")
            before, was_disabled = user.role_names, user.disabled
            wanted = wanted or set(before)
            if actor_id == user.id and ADMIN in before and ADMIN not in wanted:
                raise FailedPrecondition("Admins cannot remove their own ADMIN role",
                                         reason="CANNOT_REMOVE_OWN_ADMIN")
            if actor_id == user.id and disabled:
                raise FailedPrecondition("Admins cannot disable their own account", reason="CANNOT_DISABLE_SELF")
            # Change only what differs: deleting and re-inserting the same (user, role) key conflicts.
            user.roles = [r for r in user.roles if r.role_name in wanted] + [
                UserRole(role_name=name) for name in sorted(wanted - set(before))]
            if disabled is not None:
                user.disabled = disabled
            now = utcnow()
            if wanted != set(before) or user.disabled != was_disabled:
                _retire_access_tokens(user, now)
            if user.disabled and not was_disabled:
                _revoke_sessions(session, user.id, now)
            session.flush()
            account = Account.of(user)
        self._accounts.forget(user_id)
        if wanted != set(before):
            self._audit.record(actions.ROLES_CHANGED, actor_id=actor_id, target=f"user:{user_id}",
                               payload={"before": before, "after": list(account.roles)},
                               request_id=origin.request_id, peer=origin.peer)
        if account.disabled != was_disabled:
            self._audit.record(ACCOUNT_DISABLED if account.disabled else ACCOUNT_ENABLED, actor_id=actor_id,
                               target=f"user:{user_id}", request_id=origin.request_id, peer=origin.peer)
        return account

    # -- sessions ---------------------------------------------------------------------------------
    def sign_in(self, *, login: str, password: str, origin: Origin = Origin()) -> SignedIn:
        """Exchange a login (username or email) and password for a token pair.

        Raises InvalidInput (empty fields), TooLarge (TOO_MANY_SIGNIN_ATTEMPTS with retry delay; ErrorInfo
        metadata "rule" says which limit: login_address, login or address), Unauthenticated
        (INVALID_CREDENTIALS, the same for an unknown login and a wrong password), Forbidden
        (ACCOUNT_DISABLED, only after the right password).
        """
        login = login.strip()[:LOGIN_MAX]
        require_fields([(name, "is required") for name, value in (("login", login), ("password", password))
                        if not value])
        address = origin.client_address
        with self._audit_throttling(login, origin):
            attempt = self._throttle.before_attempt(login=login, address=address)
        with unit_of_work(self._read_sessions) as session:
            user = _find_by_login(session, login)
            found = ((Account.of(user), user.password_hash, user.token_version)
                     if user is not None and user.password_hash else None)
        # An unknown login runs argon2 too: the answer must take the same time either way.
        ok = self._passwords.check(found[1], password) if found else self._passwords.check_unknown(password)
        if not found or not ok:
            self._audit.record(actions.SIGN_IN_FAILED, actor_id=found[0].id if found else "",
                               payload={"login": login, "known_login": bool(found), "address": address},
                               request_id=origin.request_id, peer=origin.peer)
            with self._audit_throttling(login, origin):
                self._throttle.failed(login=login, address=address, attempt=attempt)
            raise Unauthenticated("The login or password is wrong", reason="INVALID_CREDENTIALS")
        account, stored_hash, version = found
        self._throttle.succeeded(login=login, address=address)
        if account.disabled:
            raise Forbidden("This account is disabled; ask an administrator", reason="ACCOUNT_DISABLED")
        upgraded = self._passwords.hash(password) if self._passwords.needs_rehash(stored_hash) else None
        with unit_of_work(self._sessions) as session:
            if upgraded:  # parameters changed since this hash was made: store one with the current ones
                session.execute(update(User).where(User.id == account.id, User.password_hash == stored_hash)
                                .values(password_hash=upgraded))
            refresh_token = self._add_refresh_token(session, account.id, family_id=new_id())
        access_token, expires_in = self._tokens.issue_access(account.id, list(account.roles), version=version)
        return SignedIn(TokenPair(access_token, refresh_token, expires_in), account)

    @contextmanager
    def _audit_throttling(self, login: str, origin: Origin) -> Iterator[None]:
        try:
            yield
        except TooLarge as exc:
            self._audit.record(SIGN_IN_THROTTLED, payload={"rule": exc.metadata.get("rule", ""), "login": login,
                                                           "address": origin.client_address},
                               request_id=origin.request_id, peer=origin.peer)
            raise

    def refresh(self, *, refresh_token: str, origin: Origin = Origin()) -> TokenPair:
        """Rotate a refresh token: retire it, return a new pair. A retired token revokes its family.

        Raises InvalidInput (empty), Unauthenticated (REFRESH_TOKEN_INVALID, REFRESH_TOKEN_EXPIRED,
        REFRESH_TOKEN_REVOKED, REFRESH_TOKEN_REUSED), Forbidden (ACCOUNT_DISABLED).
        """
        require_fields([] if refresh_token else [("refresh_token", "is required")])
        now = utcnow()
        with unit_of_work(self._sessions) as session:
            row = _refresh_row(session, refresh_token)
            if row.revoke_time is not None:
                raise Unauthenticated("This session was ended; sign in again", reason="REFRESH_TOKEN_REVOKED")
            reused = row.retire_time is not None
            if reused:  # someone kept an old token: assume theft and end the whole session
                _revoke_family(session, row.family_id, now)
            elif row.expire_time <= now:
                raise Unauthenticated("The refresh token has expired; sign in again",
                                      reason="REFRESH_TOKEN_EXPIRED")
            else:
                row.retire_time = now
                user = session.get(User, row.user_id)
                assert user is not None  # the token row's foreign key cascades on delete
                if user.disabled:
                    raise Forbidden("This account is disabled; ask an administrator", reason="ACCOUNT_DISABLED")
                roles, version = user.role_names, user.token_version  # re-read: the current ones count
                new_token = self._add_refresh_token(session, row.user_id, family_id=row.family_id, now=now)
        if reused:
            self._audit.record(REFRESH_REUSED, actor_id=row.user_id, target=f"session:{row.family_id}",
                               request_id=origin.request_id, peer=origin.peer)
            raise Unauthenticated("This refresh token was already used; the session has been ended",
                                  reason="REFRESH_TOKEN_REUSED")
        access_token, expires_in = self._tokens.issue_access(row.user_id, roles, version=version)
        return TokenPair(access_token, new_token, expires_in)

    def sign_out(self, *, user_id: str, refresh_token: str, origin: Origin = Origin()) -> None:
        """Revoke the refresh token's whole family. Signing out twice is fine.

        Raises InvalidInput (empty), NotFound (REFRESH_TOKEN_NOT_FOUND: unknown or another user's).
        """
        require_fields([] if refresh_token else [("refresh_token", "is required")])
        with unit_of_work(self._sessions) as session:
            row = session.scalars(select(RefreshToken).where(
                RefreshToken.token_hash == _digest(refresh_token))).one_or_none()
            if row is None or row.user_id != user_id:
                raise NotFound("No such session for this user", reason="REFRESH_TOKEN_NOT_FOUND")
            _revoke_family(session, row.family_id, utcnow())
        self._audit.record(SIGNED_OUT, actor_id=user_id, target=f"session:{row.family_id}",
                           request_id=origin.request_id, peer=origin.peer)

    def _add_refresh_token(self, session: Session, user_id: str, *, family_id: str,
                           now: datetime | None = None) -> str:
        token = secrets.token_urlsafe(32)
        created = now or utcnow()
        session.add(RefreshToken(id=new_id(), token_hash=_digest(token), family_id=family_id, user_id=user_id,
                                 create_time=created, expire_time=created + self._refresh_ttl))
        return token

    def sign_out_everywhere(self, *, caller: Principal, user_id: str = "", origin: Origin = Origin()) -> None:
        """End every session of user_id (the caller's own when empty): refresh tokens are revoked and
        access tokens refused by every server within seconds. For a service principal, its service tokens
        are revoked.

        Raises InvalidInput (malformed id), Forbidden (ADMIN_REQUIRED: another user's, by a non-admin),
        NotFound (USER_NOT_FOUND).
        """
        user_id = user_id or caller.user_id
        require_fields(validation.id_violations("user_id", user_id))
        if user_id != caller.user_id and not caller.is_admin:
            raise Forbidden("Only an admin may sign another user out", reason="ADMIN_REQUIRED")
        now = utcnow()
        with unit_of_work(self._sessions) as session:
            user = session.get(User, user_id, with_for_update=True)
            if user is None:
                raise NotFound("No such user", reason="USER_NOT_FOUND")
            _retire_access_tokens(user, now)
            _revoke_sessions(session, user.id, now)
            if user.is_service:
                session.execute(update(ServiceToken).where(ServiceToken.principal_id == user.id,
                                                           ServiceToken.revoke_time.is_(None))
                                .values(revoke_time=now, revoked_by=f"user:{caller.user_id}" if caller.user_id
                                        else "operator"))
        self._audit.record(SIGNED_OUT_EVERYWHERE, actor_id=caller.user_id, target=f"user:{user_id}",
                           request_id=origin.request_id, peer=origin.peer)


def _refuse_taken(session: Session, username: str, email: str) -> None:
    taken = session.execute(select(User.username, User.email).where(
        or_(User.username == username, User.email == email))).all()
    if any(row.username == username for row in taken):
        raise AlreadyExists("That username is taken", reason="USERNAME_TAKEN")
    if taken:
        raise AlreadyExists("That email is already registered", reason="EMAIL_TAKEN")


def _find_by_login(session: Session, login: str) -> User | None:
    if "@" in login:
        return session.scalars(select(User).where(User.email == validation.normalise_email(login))).one_or_none()
    return session.scalars(select(User).where(User.username == login.lower())).one_or_none()


def _refresh_row(session: Session, refresh_token: str) -> RefreshToken:
    row = session.scalars(select(RefreshToken).where(RefreshToken.token_hash == _digest(refresh_token))
                          .with_for_update()).one_or_none()
    if row is None:
        raise Unauthenticated("The refresh token is not valid", reason="REFRESH_TOKEN_INVALID")
    return row


def _revoke_family(session: Session, family_id: str, now: datetime) -> None:
    session.execute(update(RefreshToken).where(RefreshToken.family_id == family_id,
                                               RefreshToken.revoke_time.is_(None)).values(revoke_time=now))



def _revoke_sessions(session: Session, user_id: str, now: datetime) -> None:
    session.execute(update(RefreshToken).where(RefreshToken.user_id == user_id,
                                               RefreshToken.revoke_time.is_(None)).values(revoke_time=now))


def _retire_access_tokens(user: User, now: datetime) -> None:
    # Servers poll credentials_change_time and refuse tokens issued under an older version.
    user.token_version += 1
    user.credentials_change_time = now
