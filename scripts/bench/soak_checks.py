"""What the soak measures while it runs (memory of every process, Redis keys and queue depths) and what it
checks at the end, from the database: every accepted upload finished exactly once, with one terminal audit
event and one upload.accepted event per image, and every webhook delivery the service recorded for the
normal endpoint received there (duplicates only as same-id redeliveries)."""

from __future__ import annotations

import bisect
import contextlib
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis
from soak_deploy import Deployment
from soak_heap import heap_in_use
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from stack import rss_kib

from pixelcheck.analysis.models import Analysis
from pixelcheck.audit.models import AuditEvent
from pixelcheck.keys import RedisKeys
from pixelcheck.scheduling.fair_queue import FairQueue
from pixelcheck.webhooks.models import WebhookDelivery
from pixelcheck.webhooks.signing import message_id
from pixelcheck.worker import broker_lists

RSS_SLOPE_LIMIT_MIB_PER_MIN = 5.0  # after warm-up, over at least LONG_WINDOW_SECONDS
# A shorter window (--ci) cannot tell a server's warm-up (+30 MiB/min over its first two minutes under this load)
# from a leak: it catches gross leaks only (a leak of 100 KiB per upload at the --ci pace is ~95 MiB/min).
SHORT_WINDOW_LIMIT_MIB_PER_MIN = 60.0
LONG_WINDOW_SECONDS = 300.0
MIN_SLOPE_SPAN_SECONDS = 30.0
PROCESS_WARMUP_SECONDS = 120.0  # a replacement process loads its model and fills its caches first (worker: ~90 s)
FAULT_SETTLE_SECONDS = 20.0  # after a fault, load moves between processes (recovery takes 0.2-3 s)


@dataclass
class Row:
    check: str
    value: str
    target: str = ""
    ok: bool | None = None  # None: reported, not judged


@dataclass
class Samples:
    rss: dict[tuple[str, int], list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))
    # the server children's heap in use, summed over the children (KiB): malloc's and pymalloc's
    server_heap: list[tuple[float, int, int]] = field(default_factory=list)
    redis_keys: list[tuple[float, int]] = field(default_factory=list)
    tokens: list[tuple[float, int]] = field(default_factory=list)  # RUN_NEXT and map tasks in the broker lists
    fair_waiting: list[tuple[float, int]] = field(default_factory=list)  # items waiting in the fair queue
    webhook_queue: list[tuple[float, int]] = field(default_factory=list)  # delivery tasks waiting
    exits: list[str] = field(default_factory=list)  # processes that ended on their own (and were restarted)


class Sampler:
    """Samples every interval seconds in a thread of its own until stop()."""

    def __init__(self, deployment: Deployment, interval: float, heap: Path) -> None:
        """heap: the folder the server children write their heap in use to (soak_heap.server_env)."""
        self.samples = Samples()
        self._deployment, self._interval, self._heap = deployment, interval, heap
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)
        settings = deployment.settings
        self._keys = RedisKeys(settings.redis_key_prefix)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> Samples:
        self._stop.set()
        self._thread.join(30)
        return self.samples

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.samples.exits += self._deployment.restart_exited()
            now = time.monotonic()
            for role, pid in self._deployment.processes().items():
                with contextlib.suppress(OSError):  # ended between listing and reading
                    self.samples.rss[(role, pid)].append((now, rss_kib(pid)))
            self._sample_server_heap(now)
            client = redis.Redis.from_url(self._deployment.settings.redis_url, socket_timeout=2,
                                          socket_connect_timeout=2)
            try:
                fair = FairQueue(client, self._keys.prefix, running_timeout_seconds=120)
                tokens = sum(int(client.llen(name)) for name in broker_lists(self._keys).values())
                webhooks = int(client.llen(f"{self._keys.celery_keyprefix}{self._keys.webhook_queue}"))
                self.samples.redis_keys.append((now, int(client.dbsize())))
                self.samples.tokens.append((now, tokens))
                self.samples.fair_waiting.append((now, fair.waiting()))
                self.samples.webhook_queue.append((now, webhooks))
            except redis.RedisError:
                pass  # restarting: no sample
            finally:
                client.close()

    def _sample_server_heap(self, now: float) -> None:
        """The sum over the running server children, where each wrote its heap in use within three intervals (a
        child that just started has not yet: no sample)."""
        readings = [heap_in_use(self._heap, pid, time.time() - 3 * self._interval)
                    for pid in self._deployment.server_children()]
        if readings and all(r is not None for r in readings):
            self.samples.server_heap.append((now, sum(r[0] for r in readings if r) // 1024,
                                             sum(r[1] for r in readings if r) // 1024))


def slope_mib_per_minute(points: list[tuple[float, int]]) -> float:
    """Least-squares slope of (seconds, KiB) points in MiB per minute."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return 0.0 if var == 0 else sum((t - mean_t) * (v - mean_v) for t, v in points) / var * 60 / 1024


def _course(points: list[tuple[float, int]], steps: int = 6) -> str:
    """RSS in MiB at `steps` even times of the window: a step (load moved to this process) reads apart from
    growth that goes on."""
    picks = [points[round(i * (len(points) - 1) / (steps - 1))][1] for i in range(steps)]
    return "MiB: " + " ".join(f"{v / 1024:.0f}" for v in picks)


def between_faults(points: list[tuple[float, int]], faults: Sequence[float]) -> list[list[tuple[float, int]]]:
    """The stretches of points between faults, each without its first FAULT_SETTLE_SECONDS after the fault: a
    fault moves load between processes (a killed server's clients reconnect to its sibling) and a process's
    memory steps up with its load once, where a leak goes on growing in every stretch."""
    cuts = sorted(faults)
    stretches: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for t, kib in points:
        after = bisect.bisect_right(cuts, t)  # faults at or before t
        if not after or t - cuts[after - 1] >= FAULT_SETTLE_SECONDS:
            stretches[after].append((t, kib))
    return [s for _, s in sorted(stretches.items()) if len(s) >= 5 and s[-1][0] - s[0][0] >= MIN_SLOPE_SPAN_SECONDS]


def growth_between_faults(points: list[tuple[float, int]], faults: Sequence[float]) -> tuple[float, float]:
    """(MiB per minute, seconds covered): the slopes of the stretches between faults, weighted by their span."""
    stretches = between_faults(points, faults)
    spans = [s[-1][0] - s[0][0] for s in stretches]
    if not stretches:
        return 0.0, 0.0
    return sum(slope_mib_per_minute(s) * w for s, w in zip(stretches, spans, strict=True)) / sum(spans), sum(spans)


def _growth_row(check: str, growth: float, covered: float, whole: float, course: str) -> Row:
    limit = RSS_SLOPE_LIMIT_MIB_PER_MIN if covered >= LONG_WINDOW_SECONDS else SHORT_WINDOW_LIMIT_MIB_PER_MIN
    short = "" if covered >= LONG_WINDOW_SECONDS else f" (< {LONG_WINDOW_SECONDS:.0f} s between faults)"
    return Row(check, f"{growth:+.2f} MiB/min over {covered:.0f} s; whole window {whole:+.2f} MiB/min ({course})",
               f"<= {limit:g} MiB/min{short}", growth <= limit)


def memory_rows(samples: Samples, warm_until: float, faults: Sequence[float] = ()) -> list[Row]:
    """Per role, the steepest growth of its processes' RSS after warm-up (and, for a process started later, a
    replacement, after its own first PROCESS_WARMUP_SECONDS), judged between faults: the slope over the
    stretches between faults, beside the slope over the whole window (which a one-off step raises).

    A server child's RSS is shown, not judged: connections move between the children as they age (and after a
    child's restart), and glibc keeps the pages a child touched at its busiest, so its RSS steps up once per
    load it carried. The servers are judged by their heap in use, all children together (heap_rows)."""
    by_role: dict[str, list[tuple[float, float, int, int, float, str]]] = defaultdict(list)
    for (role, _), points in samples.rss.items():
        late = [p for p in points if p[0] >= max(warm_until, points[0][0] + PROCESS_WARMUP_SECONDS)]
        if len(late) >= 5 and late[-1][0] - late[0][0] >= MIN_SLOPE_SPAN_SECONDS:
            growth, covered = growth_between_faults(late, faults)
            by_role[role].append((growth, covered, late[-1][1], len(late), slope_mib_per_minute(late),
                                  _course(late)))
    rows = []
    for role in sorted(by_role):
        growth, covered, last, count, whole, course = max(by_role[role])
        row = _growth_row(f"RSS growth after warm-up, between faults: {role} (now {last / 1024:.0f} MiB, {count} "
                          f"samples)", growth, covered, whole, course)
        if role.startswith("server child"):
            row.target, row.ok = "shown; the server children are judged by their heap in use together", None
        rows.append(row)
    return rows


def heap_rows(samples: Samples, warm_until: float, faults: Sequence[float] = (),
              server_restarts: Sequence[float] = ()) -> list[Row]:
    """The server children's heap in use (malloc + pymalloc), summed over the children, after warm-up and between
    faults, as memory_rows judges RSS; after a server child's restart its replacement's first
    PROCESS_WARMUP_SECONDS are left out too. Load that moves between the children moves their heap with it and
    leaves the sum as it was; a leak grows it."""
    warm = [(t, malloc + python) for t, malloc, python in samples.server_heap if t >= warm_until]
    points = [(t, v) for t, v in warm if not any(0 <= t - r < PROCESS_WARMUP_SECONDS for r in server_restarts)]
    if len(points) < 5 or points[-1][0] - points[0][0] < MIN_SLOPE_SPAN_SECONDS:
        if len(warm) >= 5 and len(points) < len(warm):
            # The children reported, but a short run (--ci: 2 minutes) has too little time left outside a
            # restarted child's first PROCESS_WARMUP_SECONDS: nothing to judge a slope on, nothing wrong either.
            return [Row("heap in use of the server children together",
                        f"{len(points)} of {len(warm)} samples after warm-up outside a restarted child's first "
                        f"{PROCESS_WARMUP_SECONDS:.0f} s: too few to judge", "judged in a run long enough", None)]
        return [Row("heap in use of the server children together", f"{len(points)} samples after warm-up: too few",
                    "samples over 30 s or more", False)]
    growth, covered = growth_between_faults(points, faults)
    _, malloc, python = samples.server_heap[-1]
    return [_growth_row(f"heap in use after warm-up, between faults: server children together (malloc + pymalloc; "
                        f"now {malloc / 1024:.0f} + {python / 1024:.0f} MiB, {len(points)} samples)",
                        growth, covered, slope_mib_per_minute(points), _course(points))]


def exit_rows(samples: Samples) -> list[Row]:
    return [Row("processes that exited on their own (each restarted, as a process manager would)",
                "; ".join(samples.exits) or "none", "none", not samples.exits)]


def redis_rows(samples: Samples, pending_cap: int, warm_until: float) -> list[Row]:
    keys = [v for _, v in samples.redis_keys]
    early = [v for t, v in samples.redis_keys if t < warm_until] or keys[:1] or [0]
    key_limit = 2 * max(early) + 4 * pending_cap  # keys live per queued analysis and per session at most
    waiting, tokens = _peak(samples.fair_waiting), _peak(samples.tokens)
    return [Row("Redis keys: max / last sampled", f"{max(keys, default=0)} / {keys[-1] if keys else 0}",
                f"<= {key_limit} (2x warm-up + 4 per admissible analysis)", max(keys, default=0) <= key_limit),
            Row("fair queue: items waiting, max", str(waiting), f"<= {pending_cap} (the accounts' pending caps)",
                waiting <= pending_cap),
            Row("broker: tasks waiting (RUN_NEXT tokens, maps, reports), max", str(tokens),
                f"<= {pending_cap + 200} (a token per waiting item, plus maps and reports)",
                tokens <= pending_cap + 200),
            Row("webhook queue: delivery tasks waiting, max", str(_peak(samples.webhook_queue)))]


def _peak(series: list[tuple[float, int]]) -> int:
    return max((v for _, v in series), default=0)


def unfinished(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(Analysis).where(
            Analysis.state.in_(("QUEUED", "RUNNING")))) or 0)


def wait_until(condition, timeout: float, interval: float = 1.0) -> float:  # type: ignore[no-untyped-def]
    """Seconds until condition() held, or -1 after timeout."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout:
            return -1.0
        time.sleep(interval)
    return time.monotonic() - began


def outcome_rows(engine: Engine, accepted: set[str], faults: list[tuple[str, float]]) -> list[Row]:
    """Every upload the clients saw accepted, and every analysis the database holds, in exactly one terminal
    state, with one terminal audit event and one upload.accepted event each. A missing event is put next to the
    fault (kind, epoch seconds) that came within 2 s after its image was created."""
    with Session(engine) as session:
        states = dict(session.execute(select(Analysis.image_id, Analysis.state)).tuples().all())
        created = {i: t.timestamp() for i, t in session.execute(select(Analysis.image_id, Analysis.create_time))}
        events = Counter()
        for action, target, count in session.execute(
                select(AuditEvent.action, AuditEvent.target, func.count()).where(AuditEvent.action.in_(
                    ("analysis.succeeded", "analysis.failed", "upload.accepted"))).group_by(
                    AuditEvent.action, AuditEvent.target)).tuples():
            events[("terminal" if action != "upload.accepted" else "accepted", target.removeprefix("image:"))] += count
    tally = Counter(states.values())
    lost = accepted - states.keys()
    open_ = [i for i, s in states.items() if s not in ("SUCCEEDED", "FAILED")]
    rows = [Row("uploads accepted (client) / analyses in the database",
                f"{len(accepted)} / {len(states)} ({', '.join(f'{k} {v}' for k, v in sorted(tally.items()))})"),
            Row("accepted uploads with no analysis row (lost)", str(len(lost)), "0", not lost),
            Row("analyses not in a terminal state after the drain", str(len(open_)), "0", not open_)]
    for kind, what in (("terminal", "terminal audit events (analysis.succeeded/failed)"),
                       ("accepted", "upload.accepted audit events")):
        scope = [i for i, s in states.items() if s in ("SUCCEEDED", "FAILED")] if kind == "terminal" else list(states)
        missing = [i for i in scope if events[(kind, i)] == 0]
        extra = sum(1 for i in scope if events[(kind, i)] > 1)
        near = Counter(name for i in missing for name, at in faults if 0 <= at - created[i] <= 2)
        rows.append(Row(f"images without / with more than one {what}", f"{len(missing)} / {extra}" + (
            f" (created within 2 s before: {', '.join(f'{k} {n}' for k, n in near.items())})" if near else ""),
            "0 / 0", not missing and extra == 0))
    return rows


def unseen_verdict_rows(engine: Engine, unseen: dict[str, float], faults: list[tuple[str, float]]) -> list[Row]:
    """When the analyses of watchers that ended without a verdict did finish (seconds after the watch began),
    how long they waited for their run and how long it took, and the faults injected while each watched: a
    late verdict, or a stream that missed one."""
    if not unseen:
        return []
    with Session(engine) as session:
        rows = session.execute(select(Analysis.image_id, Analysis.create_time, Analysis.start_time,
                                      Analysis.finish_time, Analysis.attempts)
                               .where(Analysis.image_id.in_(list(unseen)))).tuples().all()
    finished = {i: done.timestamp() for i, _, _, done, _ in rows if done}
    waited = [start.timestamp() - made.timestamp() for _, made, start, _, _ in rows if start]
    ran = [done.timestamp() - start.timestamp() for _, _, start, done, _ in rows if start and done]
    attempts = Counter(n for *_, n in rows)
    after = sorted(finished[i] - began for i, began in unseen.items() if i in finished)
    first = min(unseen.values())
    near = Counter(", ".join(f"{kind} ({at - first:+.0f} s)" for kind, at in faults if began - 180 <= at <= began + 180)
                   or "none" for began in unseen.values())
    return [Row("watchers without a verdict: their analysis finished after the watch began",
                f"{_spread(after)} ({len(after)} of {len(unseen)}); waited for its run {_spread(waited)}, ran "
                f"{_spread(ran)}, attempts {dict(sorted(attempts.items()))}; faults within 180 s of the watch "
                f"(time from the first such watch): " + "; ".join(f"{k}: {n}" for k, n in near.most_common()),
                "reported")]


def _spread(values: list[float]) -> str:
    values = sorted(values)
    return (f"p50 {values[len(values) // 2]:.0f} s, min {values[0]:.0f} s, max {values[-1]:.0f} s" if values
            else "none")


def quiet_breakdown_rows(engine: Engine, probes: dict[str, list[tuple[float, float]]],
                         uploads: dict[float, tuple[str, float]]) -> list[Row]:
    """Where the quiet account's upload -> verdict time went, idle and during the flood (p50 / p95 ms): the
    upload call, waiting for a worker (accepted -> claimed), the analysis (claimed -> finished), and the rest
    (the verdict reaching the watcher, and clock skew between the database's times and the client's)."""
    ids = {uploads[start][0] for spans in probes.values() for start, _ in spans if start in uploads}
    with Session(engine) as session:
        rows_found = session.execute(select(Analysis.image_id, Analysis.create_time, Analysis.start_time,
                                            Analysis.finish_time, Analysis.stage_timings_ms)
                                     .where(Analysis.image_id.in_(list(ids)))).tuples().all()
    times = {i: (made.timestamp(), start.timestamp(), done.timestamp()) for i, made, start, done, _ in rows_found
             if start and done}
    stages = {i: dict(timings or {}) for i, *_, timings in rows_found}
    rows = []
    for name, spans in probes.items():
        parts: dict[str, list[float]] = defaultdict(list)
        for start, end in spans:
            image_id, upload_seconds = uploads.get(start, ("", 0.0))
            if image_id not in times:
                continue
            made, claimed, done = times[image_id]
            parts["upload"].append(upload_seconds * 1000)
            parts["waited"].append((claimed - made) * 1000)
            parts["ran"].append((done - claimed) * 1000)
            parts["rest"].append((end - start - upload_seconds - (done - made)) * 1000)
            for stage, ms in stages.get(image_id, {}).items():
                parts[f"  {stage}"].append(float(ms))
        rows.append(Row(f"quiet account, {name}: upload / waited for a worker / analysis (its stages) / rest, "
                        "p50 / p95 (ms)", ", ".join(f"{k.strip()} {_ms(v, 50)} / {_ms(v, 95)}"
                                                    for k, v in parts.items()) or "none"))
    return rows


def _ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]:.0f}" if ordered else "-"


def delivered(engine: Engine, endpoint_id: str) -> bool:
    with Session(engine) as session:
        return not session.scalar(select(func.count()).select_from(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.state != "DELIVERED"))


def webhook_rows(engine: Engine, endpoints: dict[str, str], owner_id: str, received: dict[str, list[str]]) -> list[Row]:
    with Session(engine) as session:
        recorded = {name: {message_id(i) for i in session.scalars(select(WebhookDelivery.id).where(
            WebhookDelivery.endpoint_id == endpoint))} for name, endpoint in endpoints.items()}
        finished = int(session.scalar(select(func.count()).select_from(Analysis).where(
            Analysis.owner_id == owner_id, Analysis.state.in_(("SUCCEEDED", "FAILED")))) or 0)
        undelivered = session.execute(
            select(WebhookDelivery.state, WebhookDelivery.attempts, WebhookDelivery.last_error)
            .where(WebhookDelivery.endpoint_id == endpoints["normal"], WebhookDelivery.state != "DELIVERED")).tuples()
        stuck = Counter(f"{state}, {attempts} attempts{', ' + error[:40] if error else ''}"
                        for state, attempts, error in undelivered)
    normal, got = recorded["normal"], received.get("normal", [])
    missing, unknown = normal - set(got), set(got) - normal
    rows = [Row("webhook events: the endpoint owner's verdicts / deliveries recorded for each endpoint",
                f"{finished} / {', '.join(f'{n} {len(ids)}' for n, ids in recorded.items())}", "equal",
                all(len(ids) == finished for ids in recorded.values())),
            Row("normal endpoint: recorded deliveries not received / received ids never recorded",
                f"{len(missing)} / {len(unknown)}", "0 / 0", not missing and not unknown),
            *([Row("normal endpoint: deliveries not DELIVERED, by state",
                   "; ".join(f"{k}: {n}" for k, n in stuck.items()))] if stuck else []),
            Row("normal endpoint: same-id redeliveries (received more than once)",
                str(len(got) - len(set(got))), "allowed (same webhook-id)")]
    for name in ("slow", "failing"):
        ids = received.get(name, [])
        rows.append(Row(f"{name} endpoint: attempts received / distinct deliveries among them",
                        f"{len(ids)} / {len(set(ids))}", "reported"))
    return rows
