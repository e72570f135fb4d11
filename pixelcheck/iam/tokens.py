"""Access tokens: short-lived JWTs signed with one server-pinned algorithm (HS256, EdDSA or RS256).

Verification needs only the secret or the public key and never touches the database, so it can sit on
every RPC's path and other services can verify tokens with the public key alone. What a token proves is
fixed by its bytes, so a verified token is remembered (bounded, per process) until it expires and is not
decoded again; expiry is still checked on every call, and checks that can change for a token that is still
signed and unexpired (revocation) belong after this one, never inside it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from pixelcheck.errors import Unauthenticated
from pixelcheck.iam.cache import TtlCache
from pixelcheck.iam.models import ROLE_NAMES
from pixelcheck.iam.principal import SERVICE, Principal
from pixelcheck.settings import Settings, SettingsError

ACCESS = "access"
LEEWAY_SECONDS = 5  # tolerated clock skew between the issuing and the verifying host
REQUIRED_CLAIMS = ["sub", "roles", "iat", "nbf", "exp", "iss", "aud", "jti", "typ"]
VERIFIED_MAX_ENTRIES = 50_000  # distinct live tokens remembered per process (~0.5 KiB each)
VERIFIED_MAX_SECONDS = 3600.0  # long-lived service tokens are decoded again at least hourly
VERSION_CLAIM = "ver"  # the user's token version at issue time; tokens from before it existed count as 0
_KEY_TYPES: dict[str, tuple[type, ...]] = {
    "EdDSA": (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey),
    "RS256": (rsa.RSAPublicKey,),
}


@dataclass(frozen=True)
class ServiceToken:
    token: str
    token_id: str
    expire_time: datetime


class TokenService:
    """Issues and verifies access tokens (users' and services') with the algorithm named in settings."""

    def __init__(self, settings: Settings) -> None:
        self._algorithm = settings.jwt_algorithm
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._ttl = settings.access_token_ttl_seconds
        self._signing_key: Any
        self._verifying_key: Any
        if self._algorithm == "HS256":
            self._signing_key = self._verifying_key = settings.jwt_secret.encode()
        else:
            self._verifying_key = _load_public_key(settings.jwt_public_key_file, self._algorithm)
            # A verify-only process (another service) has the public key and no private key.
            private = settings.jwt_private_key_file
            self._signing_key = load_pem_private_key(Path(private).read_bytes(), None) if private else None
        # token -> (principal, exp): decoding and the signature check cost more than the rest of a call.
        self._verified: TtlCache[tuple[Principal, int]] = TtlCache(VERIFIED_MAX_SECONDS,
                                                                   max_entries=VERIFIED_MAX_ENTRIES)

    @property
    def access_ttl_seconds(self) -> int:
        return self._ttl

    def issue_access(self, user_id: str, roles: list[str] | frozenset[str], *, version: int = 0) -> tuple[str, int]:
        """A signed access token for user_id with roles under the user's token version, and its lifetime."""
        return self._issue(user_id, roles, self._ttl, version=version), self._ttl

    def issue_service(self, principal_id: str, ttl_seconds: int) -> ServiceToken:
        """A long-lived access token with role SERVICE for another service's principal."""
        if ttl_seconds <= 0:
            raise ValueError("a service token needs a positive lifetime")
        token_id = uuid.uuid4().hex
        now = int(time.time())
        token = self._issue(principal_id, [SERVICE], ttl_seconds, token_id=token_id, now=now)
        return ServiceToken(token, token_id, datetime.fromtimestamp(now + ttl_seconds, UTC))

    def _issue(self, subject: str, roles: list[str] | frozenset[str], ttl: int, *, token_id: str = "",
               now: int = 0, version: int = 0) -> str:
        if self._signing_key is None:
            raise SettingsError("Issuing tokens needs PIXELCHECK_JWT_PRIVATE_KEY_FILE")
        now = now or int(time.time())
        claims: dict[str, Any] = {
            "sub": subject, "roles": sorted(roles), "iat": now, "nbf": now, "exp": now + ttl,
            "iss": self._issuer, "aud": self._audience, "jti": token_id or uuid.uuid4().hex, "typ": ACCESS,
            VERSION_CLAIM: version,
        }
        return jwt.encode(claims, self._signing_key, algorithm=self._algorithm)

    def verify_access(self, token: str) -> Principal:
        """The principal an access token proves.

        Raises Unauthenticated with reason TOKEN_EXPIRED, TOKEN_NOT_YET_VALID, TOKEN_WRONG_ISSUER,
        TOKEN_WRONG_AUDIENCE, WRONG_TOKEN_TYPE or TOKEN_INVALID (bad signature, another algorithm,
        `alg: none`, malformed, missing claims).
        """
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, expires = remembered
            if time.time() < expires + LEEWAY_SECONDS:  # PyJWT's own rule: expired once exp + leeway passed
                return principal
            self._verified.forget(token)
            raise Unauthenticated("The access token has expired; refresh it or sign in again",
                                  reason="TOKEN_EXPIRED")
        principal, expires = self._decode_access(token)
        self._verified.put(token, (principal, expires), ttl_seconds=expires + LEEWAY_SECONDS - time.time())
        return principal

    def _decode_access(self, token: str) -> tuple[Principal, int]:
        try:
            claims = jwt.decode(
                token, self._verifying_key, algorithms=[self._algorithm],  # pinned: never read from the token
                audience=self._audience, issuer=self._issuer, leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS, "strict_aud": True},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The access token has expired; refresh it or sign in again",
                                  reason="TOKEN_EXPIRED") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("The access token is not valid yet", reason="TOKEN_NOT_YET_VALID") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("The access token was issued by someone else",
                                  reason="TOKEN_WRONG_ISSUER") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("The access token is meant for another service",
                                  reason="TOKEN_WRONG_AUDIENCE") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("The access token is invalid", reason="TOKEN_INVALID") from None
        if claims["typ"] != ACCESS:
            raise Unauthenticated("This is not an access token", reason="WRONG_TOKEN_TYPE")
        roles = claims["roles"]
        subject = claims["sub"]
        version = claims.get(VERSION_CLAIM, 0)
        if (not isinstance(subject, str) or not subject or not isinstance(roles, list)
                or not all(isinstance(r, str) and r in ROLE_NAMES for r in roles)
                or not isinstance(version, int) or isinstance(version, bool)):
            raise Unauthenticated("The access token is invalid", reason="TOKEN_INVALID")
        return Principal(user_id=subject, roles=frozenset(roles), token_id=str(claims["jti"]),
                         token_version=version, expires_at=float(claims["exp"])), int(claims["exp"])


def _load_public_key(path: str, algorithm: str) -> Any:
    key = load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, _KEY_TYPES[algorithm]):
        raise SettingsError(f"PIXELCHECK_JWT_PUBLIC_KEY_FILE does not hold a key for {algorithm}")
    return key
