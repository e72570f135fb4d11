"""CSV export of a report: one row per image (and per frame read of an animation), RFC 4180, UTF-8, safe to
open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from pixelcheck.analysis.detector.verdict import Signal, Verdict
from pixelcheck.reports.document import ReportDocument, ReportEntry

CSV_HEADER: tuple[str, ...] = (
    "image_id",
    "filename",
    "sha256",
    "label",
    "confidence",
    "prob_ai",
    "confidence_band",
    "model_version",
    "analysed_at",
    "state",
    "top_signals",
    "generator_family",
    "generator_family_probability",
    "generator_runner_up",
    "stable",
    "stability_note",
)
"""Column names, in order. Columns are only ever appended, never renamed or reordered."""

ANIMATION_COLUMNS: tuple[str, ...] = ("media_kind", "frame_index", "frame_time_ms", "scene_cut", "ai_segments_ms")
"""Appended to CSV_HEADER when the report holds an animation: an animation's row (its clip verdict, with its AI
segments as start-end ms pairs) is followed by one row per frame read, whose label, confidence and prob_ai are
the frame's own. A report of still pictures only keeps exactly CSV_HEADER."""

TOP_SIGNAL_COUNT = 3
"""How many signals the top_signals column lists."""

_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: str) -> str:
    """Return value made inert for spreadsheets: a leading = + - @ (or tab, CR) gets a ' put before it."""
    if value.startswith(_FORMULA_TRIGGERS):
        return "'" + value
    return value


def format_probability(value: float) -> str:
    """Format a probability in 0..1 with four decimals, the precision the CSV carries."""
    return f"{value:.4f}"


def format_timestamp(value: datetime | None) -> str:
    """Format a finish time as ISO 8601 UTC with a Z suffix; a naive time is taken as UTC."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def top_signals(verdict: Verdict, count: int = TOP_SIGNAL_COUNT) -> tuple[Signal, ...]:
    """Return the signals that moved the verdict most: weight times distance of the score from 0.5."""
    ranked = sorted(
        enumerate(verdict.signals),
        key=lambda item: (-(item[1].weight * abs(item[1].score - 0.5)), item[0]),
    )
    return tuple(signal for _, signal in ranked[:count])


def _signals_cell(verdict: Verdict) -> str:
    return "; ".join(f"{s.name}={s.score:.2f}" for s in top_signals(verdict))


def _family_cells(verdict: Verdict | None) -> tuple[str, str, str]:
    family = verdict.generator_family if verdict else None
    if family is None:
        return "", "", ""
    if family.unknown:
        return "unknown", format_probability(family.probability), ""
    return family.family, format_probability(family.probability), family.runner_up


def _stability_cells(verdict: Verdict | None) -> tuple[str, str]:
    stability = verdict.stability if verdict else None
    if stability is None:
        return "", ""
    return ("yes" if stability.stable else "no"), stability.explanation


def entry_row(entry: ReportEntry) -> tuple[str, ...]:
    """Return the CSV cells of one entry, in CSV_HEADER order, before neutralisation."""
    verdict = entry.verdict
    return (
        entry.image_id,
        entry.filename,
        entry.sha256,
        verdict.label.value if verdict else "",
        format_probability(verdict.confidence) if verdict else "",
        format_probability(verdict.prob_ai) if verdict else "",
        verdict.band.value if verdict else "",
        verdict.model_version if verdict else "",
        format_timestamp(entry.analysed_at),
        entry.state.value,
        _signals_cell(verdict) if verdict else "",
        *_family_cells(verdict),
        *_stability_cells(verdict),
    )


def animation_rows(entry: ReportEntry) -> list[tuple[str, ...]]:
    """The rows of one entry in a report that holds an animation: ANIMATION_COLUMNS appended to entry_row, then,
    for an animation, one row per frame read."""
    row = entry_row(entry)
    timeline = entry.verdict.timeline if entry.verdict else None
    if timeline is None:
        return [(*row, "STILL" if entry.verdict else "", "", "", "", "")]
    segments = "; ".join(f"{s.start_ms}-{s.end_ms}" for s in timeline.segments)
    rows = [(*row, timeline.media_kind, "", "", "", segments)]
    for frame in timeline.frames:
        confidence = frame.prob_ai if frame.label.value == "AI" else 1 - frame.prob_ai
        rows.append((*row[:3], frame.label.value, format_probability(confidence), format_probability(frame.prob_ai),
                     "", *row[7:10], "", "", "", "", "", "", "FRAME", str(frame.index), str(frame.time_ms),
                     "yes" if frame.scene_cut else "no", ""))
    return rows


def render_csv(doc: ReportDocument) -> bytes:
    """Render a report as CSV bytes: header plus one row per entry, in entry order.

    RFC 4180: CRLF line ends, fields quoted when they hold a comma, quote or line break, quotes
    doubled. UTF-8 without a byte order mark. Every cell starting with = + - @ (or tab, CR) is
    prefixed with a single quote so that spreadsheets show it as text instead of running it.
    Entries without a verdict (queued, running, failed, deleted before analysis) keep their row
    with empty verdict columns and their state. A report holding an animation has ANIMATION_COLUMNS too.
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, dialect="excel", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    animated = any(entry.verdict is not None and entry.verdict.timeline is not None for entry in doc.entries)
    writer.writerow(CSV_HEADER + ANIMATION_COLUMNS if animated else CSV_HEADER)
    for entry in doc.entries:
        for row in animation_rows(entry) if animated else [entry_row(entry)]:
            writer.writerow([neutralise_cell(cell) for cell in row])
    return buffer.getvalue().encode("utf-8", errors="replace")
