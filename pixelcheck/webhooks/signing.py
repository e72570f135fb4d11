"""Standard Webhooks signatures (https://www.standardwebhooks.com): the secret format and the signature.

A secret is "whsec_" + base64 of random bytes; the signature of a message is
"v1," + base64(HMAC-SHA256(secret bytes, "<webhook-id>.<webhook-timestamp>.<body>")), several of them
space-separated while a rotated-out secret is still honoured. The same construction as the reference
`standardwebhooks` library (tests/unit/webhooks checks ours against it byte for byte).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The "v1,<base64>" signature of one message under secret."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_in_use: list[str], message_id: str, timestamp: int, body: str) -> str:
    """The webhook-signature header: one signature per secret in use, space-separated."""
    return " ".join(signature(secret, message_id, timestamp, body) for secret in secrets_in_use)


def message_id(delivery_id: str) -> str:
    """The webhook-id of a delivery: the same on every attempt."""
    return f"msg_{delivery_id}"
