"""A fair queue of analysis work in Redis, in front of the Celery broker.

Why in front of the broker: Celery on Redis consumes a fixed list of queues first in, first out, so one
principal's backlog delays everyone queued behind it. Instead, each accepted item goes into its principal's
own queue here, and one anonymous "run the next item" task goes to the broker. Whichever worker takes such
a task asks this queue, which hands out the head of the principal with the lowest virtual time and
advances that principal by cost / weight (start-time fair queuing: with equal weights, principals take turns;
a principal that arrives late starts at the current virtual time, so no banked credit and no penalty). An
item's cost is 1, or for an animation the frames the pixel model will read, and for a video clip those plus
decoding all its frames (ingestion.validation.analysis_cost): one account's long animations and clips then take
as many turns as the photos they cost, and cannot starve another's photos.

An item is light when its principal has nothing else queued or running: pop() says so, and pop_light()
hands out the first light one-turn analysis among the next principals for a worker's prompt lane
(prompt_lane.py), which runs it beside the worker's backlog at the normal CPU priority.

All of it is Lua scripts, atomic in Redis, so any number of servers and workers on any number of machines
share one order. Exactly-once stays with the database claim (pipeline.py): an item popped by a worker that
then died is found again by the reconciler, like a lost broker message. Tokens and items balance: every
push sends one token, a token that finds nothing is a no-op, a duplicate push of a waiting item adds
no second item, and an item handed out without a token (to a prompt lane) takes one waiting token back.

Keys (under "<prefix>:fair"): active (ZSET principal -> virtual time), q:<principal> (ZSET item -> enqueue
ms), r:<principal> (ZSET running item -> start ms), class:<class> (ZSET "<principal> <item>" -> enqueue ms,
for depth and oldest-age metrics), cost:<principal> (HASH item -> cost, for items costing more than 1),
meta:<principal> ("<class>|<weight>"), last:<principal> (the virtual
time it left at), clock (the virtual time of the last item handed out), kept (set once every waiting
analysis was queued here; gone when Redis lost its data). Keys of idle principals expire.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis

from pixelcheck.scheduling.policy import PRINCIPAL_CLASSES, Share

ANALYSIS, REGION_MAP = "a", "m"  # item kinds: an analysis, or a region map someone needs (a report)
_IDLE_KEY_SECONDS = 24 * 3600

_PUSH = """
local p, who, item, at, meta = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local class = string.match(meta, '^([^|]+)')
local added = redis.call('ZADD', p..':q:'..who, 'NX', at, item)
redis.call('SET', p..':meta:'..who, meta, 'EX', ARGV[6])
redis.call('EXPIRE', p..':q:'..who, ARGV[6])
if added == 1 then redis.call('ZADD', p..':class:'..class, 'NX', at, who..' '..item) end
if added == 1 and tonumber(ARGV[7] or '1') > 1 then
  redis.call('HSET', p..':cost:'..who, item, ARGV[7])
  redis.call('EXPIRE', p..':cost:'..who, ARGV[6])
end
if not redis.call('ZSCORE', p..':active', who) then
  local v = tonumber(redis.call('GET', p..':clock') or '0')
  local last = tonumber(redis.call('GET', p..':last:'..who) or '0')
  if last > v then v = last end
  redis.call('ZADD', p..':active', v, who)
end
return added
"""

# Takes back one "run the next item" token from the broker's list (the newest, if it is one): an item handed out
# without its token (to a worker's prompt lane, or a second one to a task) must not leave a spare token behind,
# or the broker grows by one for each such item while a backlog lasts.
_PAY = """
local function pay(list, marker)
  if list == '' then return end
  local newest = redis.call('LINDEX', list, 0)
  if newest and string.find(newest, marker, 1, true) then redis.call('LPOP', list) end
end
"""

# Hands out the head item of principal `who` (at virtual time v): advances who by the item's cost / weight,
# marks the item running, and says whether it is light: its principal had nothing else queued or running.
_TAKE = """
local function take(p, who, v, now, ttl, since)
  local q = p..':q:'..who
  local head = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
  local item, at = head[1], head[2]
  redis.call('ZREM', q, item)
  redis.call('ZREMRANGEBYSCORE', p..':r:'..who, '-inf', '('..since)
  local light = 0
  if redis.call('ZCARD', q) == 0 and redis.call('ZCARD', p..':r:'..who) == 0 then light = 1 end
  local meta = redis.call('GET', p..':meta:'..who) or 'USER|1'
  local class, weight = string.match(meta, '^([^|]+)|(.+)$')
  redis.call('ZREM', p..':class:'..class, who..' '..item)
  local cost = tonumber(redis.call('HGET', p..':cost:'..who, item) or '1')
  redis.call('HDEL', p..':cost:'..who, item)
  local nextv = v + cost / (tonumber(weight) or 1)
  redis.call('SET', p..':clock', tostring(v))
  if redis.call('ZCARD', q) == 0 then
    redis.call('ZREM', p..':active', who)
    redis.call('SET', p..':last:'..who, tostring(nextv), 'EX', ttl)
  else
    redis.call('ZADD', p..':active', nextv, who)
  end
  redis.call('ZADD', p..':r:'..who, now, item)
  redis.call('EXPIRE', p..':r:'..who, ttl)
  return {who, item, at, class, cost, light}
end
"""

_POP = _PAY + _TAKE + """
local p, now, ttl, since, list, marker = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6]
for _ = 1, 16 do
  local top = redis.call('ZRANGE', p..':active', 0, 0, 'WITHSCORES')
  if #top == 0 then return false end
  local who, v = top[1], tonumber(top[2])
  if redis.call('ZCARD', p..':q:'..who) == 0 then
    redis.call('ZREM', p..':active', who)
  else
    pay(list, marker)
    return take(p, who, v, now, ttl, since)
  end
end
return false
"""

# The first light item among the next principals in fair order: an analysis costing one turn whose principal
# has nothing else queued or running (a worker's prompt lane starts it while the worker runs a backlog).
_POP_LIGHT = _PAY + _TAKE + """
local p, now, ttl, since, list, marker = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local look = tonumber(ARGV[7])
local top = redis.call('ZRANGE', p..':active', 0, look - 1, 'WITHSCORES')
for i = 1, #top, 2 do
  local who, v = top[i], tonumber(top[i + 1])
  local q = p..':q:'..who
  if redis.call('ZCARD', q) == 1 then
    redis.call('ZREMRANGEBYSCORE', p..':r:'..who, '-inf', '('..since)
    local item = redis.call('ZRANGE', q, 0, 0)[1]
    if redis.call('ZCARD', p..':r:'..who) == 0 and string.sub(item, 1, 2) == 'a:'
        and not redis.call('HGET', p..':cost:'..who, item) then
      pay(list, marker)
      return take(p, who, v, now, ttl, since)
    end
  end
end
return false
"""

_PENDING = """
local p, who, since = ARGV[1], ARGV[2], ARGV[3]
redis.call('ZREMRANGEBYSCORE', p..':r:'..who, '-inf', '('..since)
local mine = redis.call('ZCARD', p..':q:'..who) + redis.call('ZCARD', p..':r:'..who)
for _, cost in ipairs(redis.call('HVALS', p..':cost:'..who)) do mine = mine + tonumber(cost) - 1 end
local everyone = 0
for i = 4, #ARGV do everyone = everyone + redis.call('ZCARD', p..':class:'..ARGV[i]) end
return {mine, everyone, redis.call('EXISTS', p..':kept')}
"""


@dataclass(frozen=True)
class WorkItem:
    """One item handed to a worker."""

    principal_id: str
    kind: str  # ANALYSIS or REGION_MAP
    image_id: str
    enqueued_ms: int
    principal_class: str
    cost: int = 1  # turns it takes: the frames an animation's analysis reads, else 1
    light: bool = False  # its principal had nothing else queued or running when it was handed out

    @property
    def waited_seconds(self) -> float:
        return max(0.0, time.time() - self.enqueued_ms / 1000)


@dataclass(frozen=True)
class ClassDepth:
    principal_class: str
    waiting: int
    oldest_age_seconds: float


class FairQueue:
    """The fair queue's operations; `running_timeout` bounds how long a popped item counts as running."""

    def __init__(self, client: redis.Redis, prefix: str, *, running_timeout_seconds: float,
                 token_list: str = "", token_task: str = "") -> None:
        self._redis = client
        self._prefix = f"{prefix}:fair"
        self._running_timeout = running_timeout_seconds
        # The broker's list of "run the next item" tokens (messages naming token_task), for items handed out
        # without their token; "" where nobody does that.
        self._tokens = (token_list, token_task) if token_list and token_task else ("", "")
        self._push = client.register_script(_PUSH)
        self._pop = client.register_script(_POP)
        self._pop_light = client.register_script(_POP_LIGHT)
        self._pending = client.register_script(_PENDING)

    def push(self, share: Share, kind: str, image_id: str, cost: int = 1, *, enqueued_ms: int | None = None) -> bool:
        """Queue an item for its principal, taking `cost` turns, in its principal's line by enqueued_ms (default
        now; an item queued again keeps its first place); False when it was already waiting."""
        meta = f"{share.principal_class}|{share.weight!r}"
        at = int(time.time() * 1000) if enqueued_ms is None else enqueued_ms
        return bool(self._push(args=[self._prefix, share.principal_id, f"{kind}:{image_id}", at, meta,
                                     _IDLE_KEY_SECONDS, max(1, int(cost))]))

    def share_of(self, principal_id: str) -> Share:
        """The class and weight last seen for a principal (USER, 1 when unknown), for re-queued work."""
        raw = self._redis.get(f"{self._prefix}:meta:{principal_id}")
        if not raw:
            return Share(principal_id)
        name, _, weight = raw.decode().partition("|")
        return Share(principal_id, name, float(weight or 1.0))

    def pop(self, *, pay_token: bool = False) -> WorkItem | None:
        """The next item in fair order, now counted as running for its principal; None when all are empty. With
        pay_token (an item taken without a token of its own), one waiting token is taken back from the broker."""
        tokens = self._tokens if pay_token else ("", "")
        return self._item(self._pop(args=[self._prefix, *self._now_and_since(), *tokens]))

    def pop_light(self, look: int = 8) -> WorkItem | None:
        """The first light item among the next `look` principals in fair order: a one-turn analysis whose
        principal has nothing else queued or running; None when there is none. It takes its principal's turn
        like pop(), so the principal's share stays the same, and takes back one waiting token from the broker
        (the lane runs it without one)."""
        return self._item(self._pop_light(args=[self._prefix, *self._now_and_since(), *self._tokens, look]))

    def _now_and_since(self) -> tuple[int, int, int]:
        """The Lua scripts' now, key ttl, and the start before which a running mark has expired (ms)."""
        now = time.time()
        return int(now * 1000), _IDLE_KEY_SECONDS, int((now - self._running_timeout) * 1000)

    @staticmethod
    def _item(got: Any) -> WorkItem | None:
        if not got:
            return None
        who, item, at, name, cost, light = (v.decode() if isinstance(v, bytes) else str(v) for v in got)
        kind, _, image_id = item.partition(":")
        return WorkItem(who, kind, image_id, int(float(at)), name, int(float(cost)), light == "1")

    def done(self, item: WorkItem) -> None:
        """The item stopped running (finished, failed or handed back)."""
        self._redis.zrem(f"{self._prefix}:r:{item.principal_id}", f"{item.kind}:{item.image_id}")

    def requeue(self, item: WorkItem) -> None:
        """Put a popped item back (its worker could not run it now), keeping its place by enqueue time."""
        self.done(item)
        share = self.share_of(item.principal_id)
        meta = f"{share.principal_class}|{share.weight!r}"
        self._push(args=[self._prefix, item.principal_id, f"{item.kind}:{item.image_id}", item.enqueued_ms,
                         meta, _IDLE_KEY_SECONDS, item.cost])

    def pending(self, principal_id: str) -> tuple[int, int]:
        """(turns queued or running for this principal: a waiting item counts its cost, a running one 1; items
        queued for everyone)."""
        mine, everyone, _ = self.pending_and_kept(principal_id)
        return mine, everyone

    def pending_and_kept(self, principal_id: str) -> tuple[int, int, bool]:
        """pending(), and kept(): whether those counts hold everything waiting (not while Redis's lost data
        is being queued again)."""
        since = int((time.time() - self._running_timeout) * 1000)
        mine, everyone, kept = self._pending(args=[self._prefix, principal_id, since, *PRINCIPAL_CLASSES])
        return int(mine), int(everyone), bool(kept)

    def depths(self) -> list[ClassDepth]:
        """Waiting items and the oldest one's age, per principal class."""
        now = time.time()
        pipe = self._redis.pipeline(transaction=False)
        for name in PRINCIPAL_CLASSES:
            pipe.zcard(f"{self._prefix}:class:{name}")
            pipe.zrange(f"{self._prefix}:class:{name}", 0, 0, withscores=True)
        replies = pipe.execute()
        depths = []
        for i, name in enumerate(PRINCIPAL_CLASSES):
            count, head = replies[2 * i], replies[2 * i + 1]
            age = max(0.0, now - head[0][1] / 1000) if head else 0.0
            depths.append(ClassDepth(name, int(count), round(age, 3)))
        return depths

    def kept(self) -> bool:
        """False when Redis lost what was queued here since mark_kept (a restart without persistence, a
        failover to an empty replica, a flush): every waiting analysis must then be queued again."""
        return bool(self._redis.exists(f"{self._prefix}:kept"))

    def mark_kept(self) -> None:
        """Every waiting analysis has been queued here (call after queueing them again)."""
        self._redis.set(f"{self._prefix}:kept", "1")

    def waiting(self) -> int:
        """Items waiting, all principals together."""
        return sum(d.waiting for d in self.depths())
