"""Admission control: whether a principal may queue one more analysis, asked before an upload's bytes are
read or stored.

Two checks, both in Redis so every server process shares them: an upload-rate token bucket per principal
(refill rate and burst by principal class), then caps on queued + running analyses per principal (by class;
a waiting animation or clip counts the turns it costs in the fair queue, so one account's long clips fill its cap
as the photos they cost would)
and on queued analyses service-wide (from the fair queue; a principal's from the database while the fair queue
is refilled after Redis lost its data). A refusal is RESOURCE_EXHAUSTED with a RetryInfo
delay: UPLOAD_RATE_LIMITED (the bucket says when the next token arrives) or ANALYSIS_QUEUE_FULL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis

from pixelcheck.errors import TooLarge
from pixelcheck.iam.principal import Principal
from pixelcheck.scheduling.fair_queue import FairQueue
from pixelcheck.scheduling.policy import SchedulingPolicy, principal_class

log = logging.getLogger("pixelcheck.scheduling.admission")

UPLOAD_RATE_LIMITED, ANALYSIS_QUEUE_FULL = "UPLOAD_RATE_LIMITED", "ANALYSIS_QUEUE_FULL"

# Returns {1, "0"} when a token was taken, else {0, seconds until the next token}; the clock is Redis's own,
# so servers with skewed clocks share one bucket correctly.
_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(b[1]) or burst, tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local ttl = math.ceil(burst / rate) + 1
if tokens >= 1 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'at', tostring(now))
  redis.call('EXPIRE', KEYS[1], ttl)
  return {1, '0'}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], ttl)
return {0, tostring((1 - tokens) / rate)}
"""


class Admission:
    def __init__(self, client: redis.Redis, prefix: str, policy: SchedulingPolicy, queue: FairQueue,
                 on_refusal: Callable[[str], None] | None = None,
                 stored_pending: Callable[[str], int] | None = None) -> None:
        self._prefix = f"{prefix}:upload-rate"
        self._policy = policy
        self._queue = queue
        # A principal's queued + running analyses from the database, asked only while the fair queue is not
        # kept: after Redis lost its data it counts nothing of what waits until the reconciler queues it again.
        self._stored_pending = stored_pending
        self._take = client.register_script(_TAKE)
        self._on_refusal = on_refusal

    def admit_upload(self, principal: Principal) -> None:
        """Take one upload from the principal's rate bucket and check the queue caps.

        Raises TooLarge (RESOURCE_EXHAUSTED) with reason UPLOAD_RATE_LIMITED or ANALYSIS_QUEUE_FULL and a
        retry delay. While Redis cannot be reached it admits (and logs): uploads keep working as before, their
        analyses queued by the reconciler once the broker is back, and health already says NOT_SERVING.
        """
        try:
            self._check(principal)
        except redis.RedisError:
            log.warning("admission control cannot reach Redis; admitting the upload", exc_info=True)

    def _check(self, principal: Principal) -> None:
        name = principal_class(principal)
        rate = self._policy.upload_rates.get(name)
        if rate is not None:
            taken, wait = self._take(keys=[f"{self._prefix}:{principal.user_id}"],
                                     args=[rate.per_second, rate.burst])
            if not int(taken):
                self._refuse(UPLOAD_RATE_LIMITED, f"Too many uploads: at most {rate.per_second:g} per second "
                             f"(bursts of {rate.burst}) for {name} accounts; try again shortly",
                             max(0.05, float(wait)), {"limit_per_second": f"{rate.per_second:g}",
                                                      "burst": str(rate.burst)})
        cap = self._policy.pending_caps.get(name, 0)
        service_cap = self._policy.service_pending_cap
        if not cap and not service_cap:
            return
        mine, everyone, kept = self._queue.pending_and_kept(principal.user_id)
        if cap and mine < cap and not kept and self._stored_pending is not None:
            mine = max(mine, self._stored_pending(principal.user_id))
        retry = self._policy.queue_full_retry_seconds
        if cap and mine >= cap:
            self._refuse(ANALYSIS_QUEUE_FULL, f"You already have {mine} analyses queued or running (a waiting "
                         f"animation or clip counts as the pictures it costs), the most a {name} account may have; "
                         "upload more once some finish", retry,
                         {"scope": "principal", "limit": str(cap), "pending": str(mine)})
        if service_cap and everyone >= service_cap:
            self._refuse(ANALYSIS_QUEUE_FULL, "The service has too many analyses queued right now; try again "
                         "shortly", retry, {"scope": "service", "limit": str(service_cap)})

    def _refuse(self, reason: str, message: str, retry_after: float, metadata: dict[str, str]) -> None:
        if self._on_refusal is not None:
            self._on_refusal(reason)
        raise TooLarge(message, reason=reason, retry_after_seconds=round(retry_after, 3), metadata=metadata)
