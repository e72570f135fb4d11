"""Identity rows: users, their roles, refresh tokens, service tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pixelcheck.db import Base, UtcDateTime, new_id, utcnow

ROLE_NAMES = ("USER", "PROFESSIONAL", "ADMIN", "SERVICE")


class Role(Base):
    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    description: Mapped[str] = mapped_column(String(200), default="")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (Index(None, "credentials_change_time"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    display_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(255), default="")  # empty for service principals
    is_service: Mapped[bool] = mapped_column(default=False)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Access tokens carry the version they were issued under; raising it retires all of them at once
    # (role change, deactivation, sign-out everywhere). credentials_change_time says when, so that
    # servers can poll for recent changes.
    token_version: Mapped[int] = mapped_column(default=0, server_default="0")
    disabled: Mapped[bool] = mapped_column(default=False, server_default=false())
    credentials_change_time: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    roles: Mapped[list[UserRole]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="UserRole.role_name"
    )

    @property
    def role_names(self) -> list[str]:
        return sorted(r.role_name for r in self.roles)


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role_name: Mapped[str] = mapped_column(ForeignKey("roles.name"), primary_key=True)


class RefreshToken(Base):
    """A refresh token, stored as its SHA-256. Tokens of one sign-in share a family_id."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index(None, "family_id"), Index(None, "user_id"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    create_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expire_time: Mapped[datetime] = mapped_column(UtcDateTime)
    retire_time: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)  # rotated away
    revoke_time: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)  # family revoked


class ServiceToken(Base):
    """A long-lived SERVICE access token, recorded when issued so that it can be listed and revoked.

    The id is the token's `jti` claim; the token itself is never stored.
    """

    __tablename__ = "service_tokens"
    __table_args__ = (Index(None, "create_time", "id"), Index(None, "revoke_time"), Index(None, "principal_id"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    principal_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))  # the service principal's username
    issued_by: Mapped[str] = mapped_column(String(128))  # "operator:<login>" or "user:<admin id>"
    create_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expire_time: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_time: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    revoke_time: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    revoked_by: Mapped[str] = mapped_column(String(128), default="")
