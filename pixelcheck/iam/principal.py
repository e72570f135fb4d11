"""Who is calling: the identity an access token proves."""

from __future__ import annotations

from dataclasses import dataclass

USER, PROFESSIONAL, ADMIN, SERVICE = "USER", "PROFESSIONAL", "ADMIN", "SERVICE"


@dataclass(frozen=True)
class Principal:
    user_id: str
    roles: frozenset[str]
    token_id: str = ""  # the access token's jti
    token_version: int = 0  # the user's token version the token was issued under
    expires_at: float = 0.0  # the token's exp (Unix time)

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles

    @property
    def is_service(self) -> bool:
        return SERVICE in self.roles

    @property
    def sees_everything(self) -> bool:
        """ADMIN and SERVICE may read any user's images, results and reports."""
        return self.is_admin or self.is_service

    def can_see(self, owner_id: str) -> bool:
        return self.user_id == owner_id or self.sees_everything
