"""The many-image PDF layout: a summary page, then one row per image, pending and failed ones included."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    LongTable,
    PageBreak,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from pixelcheck.analysis.detector.timeline import clock
from pixelcheck.analysis.detector.verdict import Label
from pixelcheck.reports.document import EntryState, ReportDocument, ReportEntry
from pixelcheck.reports.pdf_parts import bold_line, heading, key_value_table, preview, reading_guide
from pixelcheck.reports.pdf_style import (
    AI_COLOUR,
    BAND_SHORT,
    BODY,
    CELL,
    CELL_BOLD,
    FAILED_COLOUR,
    FONT,
    INK,
    MUTED,
    PANEL,
    PENDING_COLOUR,
    REAL_COLOUR,
    RULE,
    SMALL,
    SUBTITLE,
    TITLE,
    VERDICT_WORDS,
    entry_note,
    entry_status,
    format_bytes,
    format_datetime,
    format_duration,
    markup,
    percent,
    subject_of,
)
from pixelcheck.reports.pdf_timeline import timeline_strip

BIN_EDGES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
BIN_NAMES = ("50–59%", "60–69%", "70–79%", "80–89%", "90–100%")
ROW_THUMB = 20 * mm


@dataclass(frozen=True)
class BatchSummary:
    """Counts and timings over the entries of a batch report."""

    total: int
    by_label: dict[Label, int]
    pending: int
    failed: int
    deleted_without_verdict: int
    deleted_with_verdict: int
    mean_duration_ms: float | None
    timed: int
    histogram: dict[Label, tuple[int, ...]]
    moving: int = 0  # animations and clips among the entries

    @property
    def real_words(self) -> str:
        """The REAL verdict in words: also camera footage when the batch holds animations or clips."""
        return "Likely real: a photograph or camera footage" if self.moving else VERDICT_WORDS[Label.REAL]


def confidence_bin(confidence: float) -> int:
    """Return the histogram bin (0..4) of a confidence; values outside 0.5..1 go to the nearest end bin."""
    return min(len(BIN_NAMES) - 1, max(0, int((confidence - 0.5) * 10 + 1e-9)))


def summarise(entries: tuple[ReportEntry, ...]) -> BatchSummary:
    """Return what the summary page shows: outcome counts, mean analysis time and confidence histogram."""
    by_label: Counter[Label] = Counter()
    bins = {label: [0] * len(BIN_NAMES) for label in Label}
    states: Counter[EntryState] = Counter()
    deleted_with_verdict = 0
    durations = [e.duration_ms for e in entries if e.duration_ms is not None and e.verdict is not None]
    for entry in entries:
        if entry.verdict is not None and entry.state in (EntryState.SUCCEEDED, EntryState.DELETED):
            by_label[entry.verdict.label] += 1
            bins[entry.verdict.label][confidence_bin(entry.verdict.confidence)] += 1
            deleted_with_verdict += entry.state is EntryState.DELETED
        else:
            states[entry.state] += 1
    return BatchSummary(
        total=len(entries),
        by_label={label: by_label[label] for label in Label},
        pending=states[EntryState.QUEUED] + states[EntryState.RUNNING],
        failed=states[EntryState.FAILED],
        deleted_without_verdict=states[EntryState.DELETED],
        deleted_with_verdict=deleted_with_verdict,
        mean_duration_ms=sum(durations) / len(durations) if durations else None,
        timed=len(durations),
        histogram={label: tuple(counts) for label, counts in bins.items()},
        moving=sum(subject_of(entry) != "image" for entry in entries),
    )


def batch_story(doc: ReportDocument, width: float) -> list[Flowable]:
    """Return the flowables of a batch report: summary page, then the per-image table."""
    summary = summarise(doc.entries)
    byline = f"Batch analysis report · {summary.total} images · created {format_datetime(doc.created_at)}"
    if doc.author:
        byline += f" · prepared for {doc.author}"
    story: list[Flowable] = [
        Paragraph(markup(doc.title or "Batch analysis report"), TITLE),
        Paragraph(markup(byline), SUBTITLE),
    ]
    story += heading("Results at a glance")
    story.append(_counts_table(summary, width))
    story += heading("How confident the verdicts are")
    story.append(confidence_chart(summary, width))
    story.append(
        Paragraph(
            "Each bar counts the images whose verdict has a confidence in that range; taller bars on the "
            "right mean more clear-cut verdicts.",
            SMALL,
        )
    )
    story += heading("About the analysis")
    rows = [("Mean analysis time", _timing_sentence(summary))]
    if doc.model is not None:
        rows += [
            ("Model", f"{doc.model.name} {doc.model.version}"),
            ("Model weights (SHA-256)", doc.model.weights_sha256 or "—"),
        ]
    rows.append(("Report id", doc.report_id))
    story.append(key_value_table(rows, width))
    story.append(Spacer(1, 4 * mm))
    story.append(KeepTogether(reading_guide(width, with_signals=False)))
    story.append(PageBreak())
    story += heading("Image by image")
    story.append(entries_table(doc.entries, width))
    return story


def _timing_sentence(summary: BatchSummary) -> str:
    if summary.mean_duration_ms is None:
        return "not recorded for these images"
    return f"{format_duration(summary.mean_duration_ms)} per image (over {summary.timed} analysed images)"


def _counts_table(summary: BatchSummary, width: float) -> Table:
    rows: list[tuple[str, int, colors.Color]] = [
        (VERDICT_WORDS[Label.AI], summary.by_label[Label.AI], AI_COLOUR),
        (summary.real_words, summary.by_label[Label.REAL], REAL_COLOUR),
        ("Pending (waiting or being analysed)", summary.pending, PENDING_COLOUR),
        ("Analysis failed", summary.failed, FAILED_COLOUR),
        ("Image deleted before analysis", summary.deleted_without_verdict, PENDING_COLOUR),
    ]
    data = [[bold_line(words, 10, colour), Paragraph(str(count), CELL_BOLD)] for words, count, colour in rows]
    data.append([Paragraph("Total", CELL_BOLD), Paragraph(str(summary.total), CELL_BOLD)])
    table = Table(data, colWidths=[95 * mm, 25 * mm], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LINEBELOW", (0, 0), (-1, -3), 0.4, RULE),
                ("LINEABOVE", (0, -1), (-1, -1), 0.9, INK),
                ("BACKGROUND", (0, 0), (-1, -1), PANEL),
                ("BOX", (0, 0), (-1, -1), 0.6, RULE),
            ]
        )
    )
    if summary.deleted_with_verdict:
        note = (
            f"{summary.deleted_with_verdict} of the analysed images have since been deleted; their verdicts "
            "are kept and counted above, their previews are gone."
        )
        return Table(
            [[table], [Paragraph(markup(note), SMALL)]],
            colWidths=[width],
            hAlign="LEFT",
            style=[("LEFTPADDING", (0, 0), (-1, -1), 0)],
        )
    return table


def confidence_chart(summary: BatchSummary, width: float) -> Drawing | Paragraph:
    """Return a grouped bar chart of verdict confidence, one colour per label."""
    peak = max((max(counts) for counts in summary.histogram.values()), default=0)
    if peak == 0:
        return Paragraph("No image has a verdict yet, so there is no confidence to chart.", BODY)
    height = 62 * mm
    drawing = Drawing(width, height)
    chart = VerticalBarChart()
    chart.x, chart.y = 14 * mm, 10 * mm
    chart.width, chart.height = width - 70 * mm, height - 16 * mm
    chart.data = [summary.histogram[Label.AI], summary.histogram[Label.REAL]]
    chart.bars[0].fillColor = AI_COLOUR
    chart.bars[1].fillColor = REAL_COLOUR
    chart.bars.strokeColor = None
    chart.groupSpacing = 8
    chart.categoryAxis.categoryNames = list(BIN_NAMES)
    chart.categoryAxis.labels.fontName = FONT
    chart.categoryAxis.labels.fontSize = 8
    chart.categoryAxis.labels.dy = -3
    step = max(1, math.ceil(peak / 5))
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueStep = step
    chart.valueAxis.valueMax = step * math.ceil(peak / step)
    chart.valueAxis.labels.fontName = FONT
    chart.valueAxis.labels.fontSize = 8
    chart.valueAxis.gridStrokeColor = RULE
    chart.valueAxis.visibleGrid = True
    drawing.add(chart)
    drawing.add(String(0, chart.y + chart.height + 4, "images", fontName=FONT, fontSize=7.5, fillColor=MUTED))
    legend = Legend()
    legend.x, legend.y = chart.x + chart.width + 8 * mm, chart.y + chart.height - 4 * mm
    legend.fontName, legend.fontSize = FONT, 8.5
    legend.alignment = "right"
    legend.colorNamePairs = [(AI_COLOUR, VERDICT_WORDS[Label.AI]), (REAL_COLOUR, summary.real_words)]
    drawing.add(legend)
    return drawing


def entries_table(entries: tuple[ReportEntry, ...], width: float) -> LongTable:
    """Return one row per entry with preview, file, outcome and confidence; the header repeats per page."""
    widths = [10 * mm, ROW_THUMB + 4 * mm, 0, 46 * mm, 26 * mm]
    widths[2] = width - sum(widths)
    header = [Paragraph(text, CELL_BOLD) for text in ("#", "Preview", "Image", "Verdict", "Confidence")]
    data: list[list[object]] = [header]
    for number, entry in enumerate(entries, start=1):
        data.append(
            [
                Paragraph(str(number), CELL),
                preview(entry.image_bytes, ROW_THUMB, ROW_THUMB, deleted=entry.state is EntryState.DELETED),
                _file_cell(entry),
                _verdict_cell(entry, widths[3] - 6),
                _confidence_cell(entry),
            ]
        )
    table = LongTable(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("ALIGN", (1, 1), (1, -1), "CENTER"),
                ("BACKGROUND", (0, 0), (-1, 0), PANEL),
                ("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ]
        )
    )
    return table


def _file_cell(entry: ReportEntry) -> list[Flowable]:
    kind = entry.content_type or "unknown type"
    details = f"{entry.width} × {entry.height} · {kind} · {format_bytes(entry.size_bytes)}"
    timeline = entry.verdict.timeline if entry.verdict is not None else None
    if timeline is not None:
        details += f" · {clock(timeline.duration_ms)}"
    return [
        Paragraph(markup(entry.filename or "(no name)"), CELL_BOLD),
        Paragraph(markup(details), SMALL),
        Paragraph(markup(f"id {entry.image_id}"), SMALL),
    ]


def _verdict_cell(entry: ReportEntry, width: float) -> list[Flowable]:
    """The outcome in words; for an animation or a clip also its timeline in small and its sentence."""
    words, colour = entry_status(entry)
    cell: list[Flowable] = [bold_line(words, 8.5, colour)]
    note = entry_note(entry)
    if note:
        cell.append(Paragraph(markup(note), SMALL))
    timeline = entry.verdict.timeline if entry.verdict is not None else None
    if timeline is not None:
        if timeline.frames:
            cell += [Spacer(1, 1 * mm), timeline_strip(timeline, width)]
        cell.append(Paragraph(markup(timeline.summary), SMALL))
    return cell


def _confidence_cell(entry: ReportEntry) -> list[Flowable]:
    verdict = entry.verdict
    if verdict is None:
        return [Paragraph("—", CELL)]
    return [Paragraph(percent(verdict.confidence), CELL_BOLD), Paragraph(BAND_SHORT[verdict.band], SMALL)]
