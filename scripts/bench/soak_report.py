"""The soak's table: the traffic it offered, the gRPC status codes it got, fairness and region maps, and the
printing of every row with its target and verdict."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

from soak_checks import Row
from soak_faults import RECOVERY_LIMIT_SECONDS, Fault
from soak_traffic import Traffic
from stack import percentile, print_table

BAD_CODES = ("INTERNAL", "UNKNOWN", "HUNG")
EXPECTED_CODES = ("RESOURCE_EXHAUSTED (admission), FAILED_PRECONDITION (maps not ready), UNAVAILABLE (faults), "
                  "CLIENT_WRITE_FAILED (grpc's own INTERNAL when an upload's next chunk met the server's refusal)")


def traffic_rows(t: Traffic, info: dict[str, object], faults: list[Fault], kinds: Sequence[str]) -> list[Row]:
    codes = t.calls.by_code()
    bad = sorted(f"{method} {code} x{n}" + (f" ({t.calls.details[method, code]})" if (method, code) in t.calls.details
                                            else "")
                 for (method, code), n in t.calls.codes.items() if code in BAD_CODES)
    by_method: dict[str, int] = {}
    for (method, _), n in t.calls.codes.items():
        by_method[method] = by_method.get(method, 0) + n
    rows = [Row("capacity measured (verdicts/s, burst of two workers)", f"{info['capacity']:.2f}"),
            Row("flood pace (uploads/s) / traffic seconds",
                f"{info['flood_rate']:.2f} / {info['traffic_seconds']:.0f}"),
            Row("uploads refused by admission (RESOURCE_EXHAUSTED), by account",
                ", ".join(f"{k.split('_')[1]} {v}" for k, v in sorted(t.uploads.refused.items())) or "0"),
            *(Row(f"calls: {m}", str(n)) for m, n in sorted(by_method.items())),
            Row("calls by status code", ", ".join(f"{c} {n}" for c, n in sorted(codes.items())),
                f"no {'/'.join(BAD_CODES)}; expected: {EXPECTED_CODES}", not bad),
            *([Row("calls INTERNAL / UNKNOWN / hung past their deadline", "; ".join(bad), "none", False)]
              if bad else []),
            *[Row(name, str(n)) for name, n in sorted(t.counts.items())
              if "not READY" not in name and "cut short" not in name and "without" not in name],
            Row("watchers without a verdict / region maps not READY in 60 s / reports not READY or cut short",
                f"{t.counts['watchers without a verdict']} / {t.counts['region maps not READY within 60 s']} / "
                f"{sum(n for k, n in t.counts.items() if 'reports not READY' in k or 'cut short' in k)}",
                "0 / 0 / 0", not any(n for k, n in t.counts.items()
                                     if 'without' in k or 'not READY' in k or 'cut short' in k)),
            Row("drain: seconds until every analysis finished / normal webhooks delivered",
                f"{info['drain']:.0f} / {info['webhook_drain']:.0f}", "both within the limit (-1: not)",
                info["drain"] >= 0 and info["webhook_drain"] >= 0)]  # type: ignore[operator]
    if kinds:
        rows.append(Row("faults injected (kinds)", f"{len(faults)} of {len(kinds)} "
                        f"({len({f.kind for f in faults})} of {len(set(kinds))})", f"{len(kinds)}",
                        len(faults) == len(kinds)))
    return rows


def fairness_rows(idle: list[tuple[float, float]], busy: list[tuple[float, float]], faults: list[Fault],
                  maps: list[float], *, judged: bool = True) -> list[Row]:
    """The quiet account's p95 during the flood against idle, leaving out uploads that overlapped a fault
    (from its start until its recovery); requested region maps' p95. Not judged (reported beside their target)
    when `judged` is False: a two-minute run on a shared machine measures them too roughly to fail on."""
    windows = [(f.began, f.recovered or f.ended + RECOVERY_LIMIT_SECONDS) for f in faults]
    calm = [end - start for start, end in busy
            if not any(start < w_end and end > w_start for w_start, w_end in windows)]
    idle_ms = [(end - start) * 1000 for start, end in idle]
    busy_ms = [s * 1000 for s in calm]
    p95_idle, p95_busy = percentile(idle_ms, 95), percentile(busy_ms, 95)
    ratio = p95_busy / p95_idle if idle_ms and busy_ms else float("nan")
    return [Row("quiet account upload -> verdict p50 / p95, idle (ms)",
                f"{percentile(idle_ms, 50):.0f} / {p95_idle:.0f} ({len(idle_ms)} uploads)"),
            Row("quiet account upload -> verdict p50 / p95, flood (ms)",
                f"{percentile(busy_ms, 50):.0f} / {p95_busy:.0f} ({len(busy_ms)} uploads, "
                f"{len(busy) - len(busy_ms)} overlapping a fault left out)"),
            Row("quiet p95 flood / idle", f"{ratio:.2f}x", "<= 2x", ratio <= 2.0 if judged else None),
            Row("requested region maps, first GetRegionMap -> READY p50 / p95 (s)",
                f"{percentile(maps, 50):.2f} / {percentile(maps, 95):.2f} ({len(maps)} maps)", "p95 <= 10 s",
                (bool(maps) and percentile(maps, 95) <= 10.0) if judged else None)]


def print_results(title: str, rows: list[Row], out: io.StringIO) -> list[str]:
    """The table into out; the names of the checks that failed."""
    with contextlib.redirect_stdout(out):
        print_table(title, ["check", "measured", "target", "result"],
                    [[r.check, r.value, r.target, "" if r.ok is None else ("pass" if r.ok else "FAIL")] for r in rows])
    return [r.check for r in rows if r.ok is False]
