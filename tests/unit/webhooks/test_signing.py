"""Our Standard Webhooks signatures against the spec's reference library (standardwebhooks), byte for byte,
the event body (compact, link-free) and the retry schedule."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from pixelcheck.webhooks.delivery import DeliveryLimits
from pixelcheck.webhooks.service import event_body, link_free
from pixelcheck.webhooks.signing import SECRET_PREFIX, message_id, new_secret, signature, signature_header


def test_signature_is_the_reference_librarys_byte_for_byte() -> None:
    secret = new_secret()
    body = event_body("analysis.succeeded", {"image_id": "a" * 32, "label": "AI", "summary": "Élan — 生成"},
                      datetime(2026, 12, 4, 3, 0, tzinfo=UTC))
    now = int(time.time())
    ours = signature(secret, "msg_1", now, body)
    theirs = Webhook(secret).sign("msg_1", datetime.fromtimestamp(now, UTC), body)
    assert ours == theirs and ours.startswith("v1,")


def test_reference_library_verifies_our_headers_and_returns_the_body() -> None:
    secret = new_secret()
    body = event_body("report.ready", {"report_id": "r" * 32}, datetime.now(UTC))
    now = int(time.time())
    headers = {"webhook-id": message_id("d" * 32), "webhook-timestamp": str(now),
               "webhook-signature": signature_header([secret], message_id("d" * 32), now, body)}
    assert Webhook(secret).verify(body.encode(), headers) == json.loads(body)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body.encode(), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("report", "rapport").encode(), headers)


def test_during_a_rotation_either_secret_verifies() -> None:
    old, new = new_secret(), new_secret()
    body, now = "{}", int(time.time())
    header = signature_header([new, old], "msg_x", now, body)
    assert len(header.split(" ")) == 2
    for secret in (old, new):
        headers = {"webhook-id": "msg_x", "webhook-timestamp": str(now), "webhook-signature": header}
        Webhook(secret).verify(body, headers)


def test_secrets_are_prefixed_random_and_32_bytes() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith(SECRET_PREFIX) and first != second
    assert len(base64.b64decode(first.removeprefix(SECRET_PREFIX))) == 32


def test_event_body_is_compact_sorted_and_stable() -> None:
    at = datetime(2026, 12, 4, 3, 0, 5, tzinfo=UTC)
    body = event_body("analysis.failed", {"z": 1, "a": "x"}, at)
    assert body == '{"data":{"a":"x","z":1},"timestamp":"2026-12-04T03:00:05Z","type":"analysis.failed"}'


def test_backoff_doubles_with_jitter_and_stops_at_the_cap() -> None:
    limits = DeliveryLimits(retry_base_seconds=5, retry_max_delay_seconds=60, retry_window=timedelta(hours=1))
    assert [limits.backoff(n, lambda: 1.0) for n in (1, 2, 3, 4, 5, 9)] == [5, 10, 20, 40, 60, 60]
    assert [limits.backoff(n, lambda: 0.0) for n in (1, 2, 3)] == [2.5, 5, 10]


def test_summaries_lose_any_link_quoted_from_file_metadata() -> None:
    text = "XMP CreatorTool names a generator (see https://gen.example/x?a=1 or www.evil.example); FTP://h/p too."
    assert link_free(text) == ("XMP CreatorTool names a generator (see [link removed] or [link removed] "
                               "[link removed] too.")
