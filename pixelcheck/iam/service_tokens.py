"""Service tokens: long-lived SERVICE access tokens for other services, recorded so they can be listed and
revoked (by the CLI or an admin). A revoked token is refused by every server within seconds
(pixelcheck.iam.revocation)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.audit import actions
from pixelcheck.db import new_id, unit_of_work, utcnow
from pixelcheck.errors import AlreadyExists, NotFound, require_fields
from pixelcheck.iam import validation
from pixelcheck.iam.models import ServiceToken, User, UserRole
from pixelcheck.iam.principal import SERVICE
from pixelcheck.iam.service import Account, AuditLog, Origin
from pixelcheck.iam.tokens import TokenService
from pixelcheck.paging import decode_token, encode_token, page_size

SERVICE_EMAIL_DOMAIN = "service.pixelcheck.invalid"  # service principals have no mailbox
SERVICE_TOKEN_REVOKED = "token.service_revoked"  # target service-token:<id>


@dataclass(frozen=True)
class ServiceTokenView:
    """A recorded service token (never the token itself)."""

    id: str
    name: str
    principal_id: str
    issued_by: str
    create_time: datetime
    expire_time: datetime
    last_used_time: datetime | None
    revoke_time: datetime | None
    revoked_by: str

    @classmethod
    def of(cls, row: ServiceToken) -> ServiceTokenView:
        return cls(id=row.id, name=row.name, principal_id=row.principal_id, issued_by=row.issued_by,
                   create_time=row.create_time, expire_time=row.expire_time, last_used_time=row.last_used_time,
                   revoke_time=row.revoke_time, revoked_by=row.revoked_by)


@dataclass(frozen=True)
class IssuedServiceToken:
    token: str  # the signed token: shown once, never stored
    record: ServiceTokenView
    account: Account


@dataclass(frozen=True)
class ServiceTokenPage:
    tokens: list[ServiceTokenView]
    next_page_token: str


class ServiceTokens:
    """Issue, list and revoke service tokens. Raises pixelcheck.errors.DomainError subclasses only."""

    def __init__(self, *, sessions: sessionmaker[Session], read_sessions: sessionmaker[Session],
                 tokens: TokenService, audit: AuditLog, page_token_key: bytes) -> None:
        self._sessions = sessions
        self._read_sessions = read_sessions
        self._tokens = tokens
        self._audit = audit
        self._page_key = page_token_key

    def issue(self, *, name: str, ttl_seconds: int, issued_by: str) -> IssuedServiceToken:
        """A long-lived SERVICE token for the service principal `name` (created on first use), recorded.

        Raises InvalidInput (bad name or ttl), AlreadyExists (USERNAME_TAKEN: a person has this name).
        """
        violations = [("name", why) for _, why in validation.username_violations(name)]
        if ttl_seconds <= 0:
            violations.append(("ttl", "must be positive"))
        require_fields(violations)
        with unit_of_work(self._sessions) as session:
            user = session.scalars(select(User).where(User.username == name)).one_or_none()
            if user is not None and not user.is_service:
                raise AlreadyExists(f"{name!r} is a person's username, not a service", reason="USERNAME_TAKEN")
            if user is None:
                user = User(id=new_id(), username=name, email=f"{name}@{SERVICE_EMAIL_DOMAIN}",
                            display_name=name, password_hash="", is_service=True,
                            roles=[UserRole(role_name=SERVICE)])
                session.add(user)
                session.flush()
            account = Account.of(user)
            issued = self._tokens.issue_service(account.id, ttl_seconds)
            row = ServiceToken(id=issued.token_id, principal_id=account.id, name=name, issued_by=issued_by,
                               create_time=utcnow(), expire_time=issued.expire_time, revoked_by="")
            session.add(row)
            session.flush()
            record = ServiceTokenView.of(row)
        self._audit.record(actions.SERVICE_TOKEN_ISSUED, target=f"user:{account.id}",
                           payload={"name": name, "token_id": issued.token_id, "issued_by": issued_by,
                                    "expires": issued.expire_time.isoformat()})
        return IssuedServiceToken(issued.token, record, account)

    def list_tokens(self, *, size: int = 0, page_token: str = "", service_name: str = "") -> ServiceTokenPage:
        """Recorded service tokens, newest first (revoked and expired ones too), one page.

        Raises InvalidInput (INVALID_PAGE_SIZE, INVALID_PAGE_TOKEN).
        """
        limit = page_size(size)
        filters = {"service_name": service_name}
        query = select(ServiceToken).order_by(ServiceToken.create_time.desc(), ServiceToken.id.desc())
        if service_name:
            query = query.where(ServiceToken.name == service_name)
        if page_token:
            cursor = decode_token(self._page_key, page_token, filters)
            after_time, after_id = datetime.fromisoformat(str(cursor.get("t"))), str(cursor.get("id"))
            query = query.where(or_(ServiceToken.create_time < after_time,
                                    and_(ServiceToken.create_time == after_time, ServiceToken.id < after_id)))
        with unit_of_work(self._read_sessions) as session:
            rows = list(session.scalars(query.limit(limit + 1)))
        views = [ServiceTokenView.of(r) for r in rows[:limit]]
        more = len(rows) > limit
        next_token = encode_token(self._page_key, {"t": views[-1].create_time.isoformat(), "id": views[-1].id},
                                  filters) if more else ""
        return ServiceTokenPage(views, next_token)

    def revoke(self, *, token_id: str, revoked_by: str, actor_id: str = "",
               origin: Origin | None = None) -> ServiceTokenView:
        """Revoke a service token; every server refuses it within seconds. Revoking twice changes nothing.

        Raises InvalidInput (malformed id), NotFound (SERVICE_TOKEN_NOT_FOUND).
        """
        require_fields(validation.id_violations("id", token_id))
        origin = origin or Origin()
        with unit_of_work(self._sessions) as session:
            row = session.get(ServiceToken, token_id, with_for_update=True)
            if row is None:
                raise NotFound("No such service token", reason="SERVICE_TOKEN_NOT_FOUND")
            newly = row.revoke_time is None
            if newly:
                row.revoke_time, row.revoked_by = utcnow(), revoked_by
            view = ServiceTokenView.of(row)
        if newly:
            self._audit.record(SERVICE_TOKEN_REVOKED, actor_id=actor_id, target=f"service-token:{token_id}",
                               payload={"name": view.name, "revoked_by": revoked_by},
                               request_id=origin.request_id, peer=origin.peer)
        return view
