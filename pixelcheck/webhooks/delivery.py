"""Delivers one webhook on a worker: claim it, POST it signed, record the outcome, schedule the retry.

At least once, never twice at the same time: an attempt first takes a lease on the row with a
compare-and-set (state PENDING, due, no unexpired lease); a worker killed mid-attempt leaves the lease to
expire and the dispatcher hands the delivery to another worker, under the same webhook-id. An endpoint may
have at most `max_in_flight` attempts at once (a Redis lease set, shared by every worker), and every attempt
has connect and total timeouts, so a slow or hanging receiver holds up only its own deliveries.

Failures are retried with exponential backoff and jitter until the retry window has passed since the first
attempt; an endpoint whose deliveries have all failed for a whole window (no success since its first failure,
which is never later than that first attempt) is disabled, with the reason kept for its owner, and what it
still had pending fails with it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import redis
from sqlalchemy import func, update
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck.db import unit_of_work, utcnow
from pixelcheck.errors import DomainError, Unavailable
from pixelcheck.ingestion.url_fetch import Resolver, guarded_client, system_resolve
from pixelcheck.ingestion.url_policy import FetchPolicy, check_url
from pixelcheck.keys import RedisKeys
from pixelcheck.webhooks.models import WebhookDelivery, WebhookEndpoint
from pixelcheck.webhooks.service import DeliveryQueue
from pixelcheck.webhooks.signing import message_id, signature_header

log = logging.getLogger("pixelcheck.webhooks")

USER_AGENT = "PixelCheck-Webhooks/1"
LOG_KEPT = 20
BUSY_RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class DeliveryLimits:
    connect_timeout_seconds: float = 5.0
    timeout_seconds: float = 10.0  # one attempt, start to finish
    retry_base_seconds: float = 5.0
    retry_max_delay_seconds: float = 3600.0
    retry_window: timedelta = timedelta(hours=24)
    max_in_flight: int = 2  # per endpoint
    lease_margin_seconds: float = 30.0  # beyond timeout_seconds, before a killed attempt's lease expires

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.timeout_seconds + self.lease_margin_seconds)

    def backoff(self, attempts: int, draw: Callable[[], float] = random.random) -> float:
        """Seconds before attempt attempts + 1: base * 2^(attempts-1), capped, with jitter (half to all of it)."""
        delay = min(self.retry_max_delay_seconds, self.retry_base_seconds * 2 ** max(0, attempts - 1))
        return delay * (0.5 + 0.5 * draw())


_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[4]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0
"""


class InFlightLimiter:
    """At most `limit` attempts per endpoint at once, over every worker: a sorted set of leases in Redis whose
    expired members (a killed worker's) drop out by themselves."""

    def __init__(self, client: redis.Redis, keys: RedisKeys, limit: int) -> None:
        self._redis = client
        self._keys = keys
        self._limit = limit
        self._acquire = client.register_script(_ACQUIRE)

    def acquire(self, endpoint_id: str, delivery_id: str, lease_seconds: float) -> bool:
        now = time.time()
        try:
            return bool(self._acquire(keys=[self._keys.webhook_in_flight(endpoint_id)],
                                      args=[now, now + lease_seconds, self._limit, delivery_id,
                                            int(lease_seconds) + 60]))
        except redis.RedisError as exc:
            raise Unavailable("Redis is unreachable", reason="BROKER_UNAVAILABLE") from exc

    def release(self, endpoint_id: str, delivery_id: str) -> None:
        try:
            self._redis.zrem(self._keys.webhook_in_flight(endpoint_id), delivery_id)
        except redis.RedisError:
            log.warning("could not release the in-flight lease of %s; it expires by itself", delivery_id)


@dataclass(frozen=True)
class _Claim:
    endpoint_id: str
    url: str
    secrets: list[str]
    body: str
    attempts: int
    started: datetime  # when this attempt took its lease


@dataclass(frozen=True)
class AttemptResult:
    status_code: int  # 0: no HTTP answer
    error: str  # "" on success

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


class WebhookSender:
    def __init__(self, *, sessions: sessionmaker[Session], policy: FetchPolicy, limits: DeliveryLimits,
                 limiter: InFlightLimiter, queue: DeliveryQueue, resolve: Resolver = system_resolve,
                 draw: Callable[[], float] = random.random, clock: Callable[[], datetime] = utcnow) -> None:
        self._sessions = sessions
        self._policy = policy
        self.limits = limits
        self._limiter = limiter
        self._queue = queue
        self.resolve = resolve
        self._draw = draw
        self._clock = clock

    def deliver(self, delivery_id: str) -> str:
        """One attempt at delivery_id. Returns "delivered", "retry", "failed", "busy" (the endpoint has its
        maximum in flight: sent again shortly) or "skipped" (not due, in flight elsewhere, finished, gone)."""
        with unit_of_work(self._sessions) as session:
            row = session.get(WebhookDelivery, delivery_id)
            endpoint_id = row.endpoint_id if row is not None and row.state == "PENDING" else None
        if endpoint_id is None:
            return "skipped"
        lease = self.limits.lease
        if not self._limiter.acquire(endpoint_id, delivery_id, lease.total_seconds()):
            self._queue.deliver_webhook(delivery_id, countdown=BUSY_RETRY_SECONDS)
            return "busy"
        try:
            claim = self._claim(delivery_id, lease)
            if claim is None:
                return "skipped"
            result = asyncio.run(self._post(delivery_id, claim))
            return self._record(delivery_id, claim, result)
        finally:
            self._limiter.release(endpoint_id, delivery_id)

    def _claim(self, delivery_id: str, lease: timedelta) -> _Claim | None:
        now = self._clock()
        with unit_of_work(self._sessions) as session:
            taken = session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.state == "PENDING",
                       WebhookDelivery.next_attempt_time <= now,
                       (WebhookDelivery.lease_until.is_(None)) | (WebhookDelivery.lease_until < now))
                .values(lease_until=now + lease, attempts=WebhookDelivery.attempts + 1,
                        first_attempt_time=func.coalesce(WebhookDelivery.first_attempt_time, now))
                .execution_options(synchronize_session=False))
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = session.get(WebhookDelivery, delivery_id)
            endpoint = session.get(WebhookEndpoint, row.endpoint_id) if row is not None else None
            if row is None or endpoint is None:
                return None
            secrets = [endpoint.secret]
            if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > now:
                secrets.append(endpoint.previous_secret)
            return _Claim(endpoint.id, endpoint.url, secrets, row.body, row.attempts, now)

    async def _post(self, delivery_id: str, claim: _Claim) -> AttemptResult:
        limits = self.limits
        timestamp = int(time.time())
        webhook_id = message_id(delivery_id)
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json", "webhook-id": webhook_id,
                   "webhook-timestamp": str(timestamp),
                   "webhook-signature": signature_header(claim.secrets, webhook_id, timestamp, claim.body)}
        timeout = httpx.Timeout(limits.timeout_seconds, connect=limits.connect_timeout_seconds)
        try:
            check_url(claim.url)
            async with asyncio.timeout(limits.timeout_seconds), guarded_client(
                    self._policy, lambda h, p: self.resolve(h, p), timeout=timeout, headers=headers) as client:
                response = await client.post(claim.url, content=claim.body.encode())
                status = response.status_code
            return AttemptResult(status, "" if 200 <= status < 300 else f"HTTP {status}")
        except DomainError as refused:  # the address rules, checked again at every attempt
            return AttemptResult(0, f"{refused.reason}: {refused.message}"[:255])
        except (TimeoutError, httpx.TimeoutException):
            return AttemptResult(0, f"no answer within {limits.timeout_seconds:g} seconds")
        except httpx.ConnectError:
            return AttemptResult(0, "connection refused or TLS failed")
        except httpx.HTTPError as exc:
            return AttemptResult(0, f"the connection broke off ({type(exc).__name__})")

    def _record(self, delivery_id: str, claim: _Claim, result: AttemptResult) -> str:
        now = self._clock()
        retry_in = 0.0
        with unit_of_work(self._sessions) as session:
            row = session.get(WebhookDelivery, delivery_id, with_for_update=True)
            endpoint = session.get(WebhookEndpoint, claim.endpoint_id, with_for_update=True)
            if row is None or endpoint is None or row.state != "PENDING":
                return "skipped"  # deleted meanwhile
            row.attempt_log = [*row.attempt_log, {"at": now.isoformat(), "status": result.status_code,
                                                  "error": result.error}][-LOG_KEPT:]
            row.last_status_code, row.last_error, row.lease_until = result.status_code, result.error, None
            if result.ok:
                row.state, row.delivered_time = "DELIVERED", now
                endpoint.failing_since = None
                outcome = "delivered"
            else:
                # A failure streak starts when its first failed attempt started: for a delivery whose first attempt
                # began the streak, that is its first_attempt_time exactly, so the endpoint's window (checked
                # first) is never shorter than the delivery's and the endpoint is disabled, not merely that one
                # delivery given up.
                endpoint.failing_since = endpoint.failing_since or claim.started
                if now - endpoint.failing_since >= self.limits.retry_window:
                    row.state = "FAILED"
                    _disable(session, endpoint, now, result, self.limits.retry_window)
                    outcome = "failed"
                elif now - (row.first_attempt_time or row.create_time) >= self.limits.retry_window:
                    row.state = "FAILED"
                    outcome = "failed"
                else:
                    retry_in = self.limits.backoff(claim.attempts, self._draw)
                    row.next_attempt_time = now + timedelta(seconds=retry_in)
                    outcome = "retry"
        if outcome == "retry":
            try:
                self._queue.deliver_webhook(delivery_id, countdown=retry_in)
            except Exception:  # the dispatcher finds it when it is due
                log.warning("could not schedule the retry of webhook delivery %s", delivery_id, exc_info=True)
        return outcome


def _disable(session: Session, endpoint: WebhookEndpoint, now: datetime, result: AttemptResult,
             window: timedelta) -> None:
    hours = window.total_seconds() / 3600
    endpoint.state = "DISABLED"
    endpoint.disabled_reason = (f"Every delivery failed for {hours:g} hours (since "
                                f"{endpoint.failing_since.isoformat() if endpoint.failing_since else now.isoformat()});"
                                f" the last attempt: {result.error or 'HTTP ' + str(result.status_code)}")
    session.execute(update(WebhookDelivery)
                    .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.state == "PENDING")
                    .values(state="FAILED", lease_until=None, last_error="the endpoint was disabled")
                    .execution_options(synchronize_session=False))
