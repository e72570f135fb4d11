"""Access tokens: what verify_access accepts and the reason it gives for everything it refuses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from pixelcheck.errors import Unauthenticated
from pixelcheck.iam.principal import SERVICE
from pixelcheck.iam.tokens import TokenService
from pixelcheck.settings import Settings, SettingsError

SECRET = "unit-test-secret-that-is-long-enough-1234"
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env(environ={}, env_file="/nonexistent").with_overrides(jwt_secret=SECRET)


@pytest.fixture
def tokens(settings: Settings) -> TokenService:
    return TokenService(settings)


def claims(**overrides: object) -> dict:
    now = int(time.time())
    base = {"sub": "u1", "roles": ["USER"], "iat": now, "nbf": now, "exp": now + 60, "iss": "pixelcheck",
            "aud": "pixelcheck-api", "jti": "j1", "typ": "access"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def rejected(tokens: TokenService, token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        tokens.verify_access(token)
    return caught.value.reason


def b64(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def pem_files(tmp_path: Path, private_key) -> tuple[str, str]:
    private = tmp_path / "private.pem"
    public = tmp_path / "public.pem"
    private.write_bytes(private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    public.write_bytes(private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(private), str(public)


def test_an_issued_token_verifies_to_its_principal(tokens: TokenService):
    token, expires_in = tokens.issue_access("user-1", ["USER", "PROFESSIONAL"])
    principal = tokens.verify_access(token)
    assert principal.user_id == "user-1"
    assert principal.roles == frozenset({"USER", "PROFESSIONAL"})
    assert expires_in == 900
    decoded = jwt.decode(token, options={"verify_signature": False})
    assert decoded["exp"] - decoded["iat"] == 900 and decoded["typ"] == "access" and decoded["jti"]


def test_alg_none_is_refused(tokens: TokenService):
    assert rejected(tokens, f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}.") == "TOKEN_INVALID"


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_another_hmac_algorithm_with_the_same_secret_is_refused(tokens: TokenService, algorithm: str):
    assert rejected(tokens, jwt.encode(claims(), SECRET, algorithm=algorithm)) == "TOKEN_INVALID"


def test_an_asymmetric_token_is_refused_by_an_hs256_server(tokens: TokenService):
    token = jwt.encode(claims(), ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA")
    assert rejected(tokens, token) == "TOKEN_INVALID"


@pytest.mark.parametrize("change, reason", [
    ({"iss": "evil"}, "TOKEN_WRONG_ISSUER"),
    ({"aud": "other-api"}, "TOKEN_WRONG_AUDIENCE"),
    ({"aud": ["pixelcheck-api", "other-api"]}, "TOKEN_WRONG_AUDIENCE"),
    ({"exp": int(time.time()) - 3600}, "TOKEN_EXPIRED"),
    ({"nbf": int(time.time()) + 24 * 3600}, "TOKEN_NOT_YET_VALID"),  # far off: values are fixed at collection
    ({"typ": "refresh"}, "WRONG_TOKEN_TYPE"),
    ({"jti": None}, "TOKEN_INVALID"),
    ({"nbf": None}, "TOKEN_INVALID"),
    ({"roles": "ADMIN"}, "TOKEN_INVALID"),
    ({"roles": ["ROOT"]}, "TOKEN_INVALID"),
    ({"sub": ""}, "TOKEN_INVALID"),
])
def test_bad_claims_are_refused_with_their_reason(tokens: TokenService, change: dict, reason: str):
    assert rejected(tokens, jwt.encode(claims(**change), SECRET, algorithm="HS256")) == reason


def test_a_few_seconds_of_clock_skew_are_tolerated(tokens: TokenService):
    token = jwt.encode(claims(nbf=int(time.time()) + 3), SECRET, algorithm="HS256")
    assert tokens.verify_access(token).user_id == "u1"


def test_a_tampered_token_is_refused(tokens: TokenService):
    token, _ = tokens.issue_access("user-1", ["USER"])
    header, _, signature = token.split(".")
    forged = f"{header}.{b64(claims(sub='user-1', roles=['ADMIN']))}.{signature}"
    assert rejected(tokens, forged) == "TOKEN_INVALID"


def test_a_token_signed_with_another_secret_is_refused(tokens: TokenService):
    assert rejected(tokens, jwt.encode(claims(), "another-secret-of-sufficient-length!", algorithm="HS256")) \
        == "TOKEN_INVALID"


def test_a_service_token_carries_only_service_and_lives_long(tokens: TokenService):
    issued = tokens.issue_service("svc-1", 30 * 86400)
    principal = tokens.verify_access(issued.token)
    assert principal.roles == frozenset({SERVICE}) and principal.token_id == issued.token_id
    assert issued.expire_time.timestamp() == pytest.approx(time.time() + 30 * 86400, abs=5)


@pytest.mark.parametrize("algorithm, make_key", [
    ("EdDSA", ed25519.Ed25519PrivateKey.generate),
    ("RS256", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)),
])
def test_asymmetric_tokens_verify_with_the_public_key_alone(settings, tmp_path, algorithm, make_key):
    private, public = pem_files(tmp_path, make_key())
    issuer = TokenService(settings.with_overrides(jwt_algorithm=algorithm, jwt_private_key_file=private,
                                                  jwt_public_key_file=public))
    verifier = TokenService(settings.with_overrides(jwt_algorithm=algorithm, jwt_public_key_file=public))
    token, _ = issuer.issue_access("user-1", ["USER"])
    assert verifier.verify_access(token).user_id == "user-1"
    with pytest.raises(SettingsError):
        verifier.issue_access("user-1", ["USER"])  # no private key: verify-only


def test_an_hmac_token_keyed_with_the_public_key_is_refused_by_an_eddsa_server(settings, tmp_path):
    private, public = pem_files(tmp_path, ed25519.Ed25519PrivateKey.generate())
    verifier = TokenService(settings.with_overrides(jwt_algorithm="EdDSA", jwt_public_key_file=public))
    # The classic key-confusion attack: HS256 with the (public) PEM bytes as the HMAC secret.
    header = b64({"alg": "HS256", "typ": "JWT"})
    body = b64(claims(roles=["ADMIN"]))
    signature = base64.urlsafe_b64encode(hmac.new(Path(public).read_bytes(), f"{header}.{body}".encode(),
                                                  hashlib.sha256).digest()).rstrip(b"=").decode()
    assert rejected(verifier, f"{header}.{body}.{signature}") == "TOKEN_INVALID"


def test_a_public_key_of_the_wrong_type_is_refused_at_start(settings, tmp_path):
    _, public = pem_files(tmp_path, ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(SettingsError):
        TokenService(settings.with_overrides(jwt_algorithm="RS256", jwt_public_key_file=public))


def test_a_verified_token_is_not_decoded_again_but_still_expires(tokens, monkeypatch) -> None:
    import pixelcheck.iam.tokens as module

    token = jwt.encode(claims(exp=int(time.time()) + 30), SECRET, algorithm="HS256")
    assert tokens.verify_access(token).user_id == "u1"
    decoded: list[str] = []
    monkeypatch.setattr(module.jwt, "decode", lambda *a, **k: decoded.append("again"))
    assert tokens.verify_access(token).user_id == "u1"
    assert decoded == []  # answered from memory
    real_time = time.time
    monkeypatch.setattr(module.time, "time", lambda: real_time() + 30 + module.LEEWAY_SECONDS)
    assert rejected(tokens, token) == "TOKEN_EXPIRED"


def test_a_refused_token_is_not_remembered(tokens) -> None:
    token = jwt.encode(claims(), "another-secret-that-is-long-enough-99", algorithm="HS256")
    assert rejected(tokens, token) == "TOKEN_INVALID"
    assert rejected(tokens, token) == "TOKEN_INVALID"
