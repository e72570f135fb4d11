"""AIP-158 pagination shared by every list: page sizes and opaque, signed page tokens.

A page token is `base64url(json body) "." base64url(hmac)`. The body holds the cursor (where the next
page starts, e.g. {"id": 1234}) and a digest of the filters of the request that produced it. The HMAC,
keyed by a secret of the server's, means a client cannot forge a cursor, and the filter digest means a
token cannot be replayed with other filters. Tokens grant no access by themselves: every list still applies
the caller's permissions and filters. Example for a service:

    key = token_key(settings.jwt_secret, "images")
    size = page_size(request_page_size)
    cursor = decode_token(key, request_token, filters) if request_token else None
    ... query size + 1 rows after cursor ...
    next_token = encode_token(key, {"id": last.id}, filters) if more else ""
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from pixelcheck.errors import InvalidInput

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_SIGNATURE_BYTES = 16  # 128-bit truncated HMAC-SHA256: plenty against forgery, keeps tokens short


def page_size(value: int, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    """The effective page size: 0 means default, values above maximum are capped.

    Raises InvalidInput (reason INVALID_PAGE_SIZE) for a negative value.
    """
    if value < 0:
        raise InvalidInput("page_size must not be negative", reason="INVALID_PAGE_SIZE",
                           violations=[("page_size", "must be 0 (default) or positive")])
    if value == 0:
        return default
    return min(value, maximum)


def token_key(secret: str, purpose: str) -> bytes:
    """A key for page tokens of one list, derived from a server secret (a token of one list is useless
    for another)."""
    return hmac.new(secret.encode(), f"pixelcheck/page-token/{purpose}".encode(), hashlib.sha256).digest()


def encode_token(key: bytes, cursor: Mapping[str, Any], filters: Mapping[str, Any]) -> str:
    """An opaque token carrying cursor, bound to filters and signed with key."""
    body = json.dumps({"c": dict(cursor), "f": _filters_digest(filters)}, separators=(",", ":"),
                      sort_keys=True).encode()
    return f"{_b64(body)}.{_b64(_sign(key, body))}"


def decode_token(key: bytes, token: str, filters: Mapping[str, Any]) -> dict[str, Any]:
    """The cursor inside token.

    Raises InvalidInput (reason INVALID_PAGE_TOKEN) when the token is malformed, was not signed with key,
    or was issued for different filters.
    """
    body_part, _, signature_part = token.partition(".")
    try:
        body = _unb64(body_part)
        signature = _unb64(signature_part)
    except (binascii.Error, ValueError):
        raise _invalid_token() from None
    if not hmac.compare_digest(signature, _sign(key, body)):
        raise _invalid_token()
    try:
        doc = json.loads(body)
    except ValueError:
        raise _invalid_token() from None
    if not isinstance(doc, dict) or not isinstance(doc.get("c"), dict):
        raise _invalid_token()
    if not hmac.compare_digest(str(doc.get("f", "")), _filters_digest(filters)):
        raise InvalidInput("page_token was issued for other filters; repeat the first request's filters",
                           reason="INVALID_PAGE_TOKEN",
                           violations=[("page_token", "does not match the request's filters")])
    return doc["c"]


def _invalid_token() -> InvalidInput:
    return InvalidInput("page_token is not a token this list issued", reason="INVALID_PAGE_TOKEN",
                        violations=[("page_token", "malformed or tampered with")])


def _filters_digest(filters: Mapping[str, Any]) -> str:
    canonical = json.dumps(dict(filters), separators=(",", ":"), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _sign(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text:
        raise ValueError("empty")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
