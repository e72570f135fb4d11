"""Building blocks shared by the single and batch PDF layouts: previews, tables, bars."""

from __future__ import annotations

import io
from collections.abc import Sequence

from reportlab.graphics.shapes import Drawing, Line, Rect, String
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Image, Paragraph, Spacer, Table, TableStyle

from pixelcheck.analysis.detector.animation import first_picture
from pixelcheck.analysis.detector.image_facts import ImageUnreadable
from pixelcheck.analysis.detector.regions import RegionMapView
from pixelcheck.analysis.detector.verdict import Signal, Verdict
from pixelcheck.analysis.region_map_image import region_map_picture
from pixelcheck.reports.pdf_style import (
    AI_COLOUR,
    BODY,
    CANNOT_SEE,
    CELL,
    CELL_BOLD,
    DIGEST,
    FONT,
    FONT_BOLD,
    HEADING,
    HOW_TO_READ_CONFIDENCE,
    HOW_TO_READ_CREDENTIALS,
    HOW_TO_READ_SIGNALS,
    MUTED,
    NOTE,
    PANEL,
    REAL_COLOUR,
    RULE,
    SIGNAL_TITLES,
    SMALL,
    markup,
    percent,
)
from pixelcheck.reports.thumbnails import make_thumbnail

THUMBNAIL_DPI = 150


def heading(text: str) -> list[Flowable]:
    """Return a section heading with a little space above it."""
    return [Spacer(1, 4 * mm), Paragraph(markup(text), HEADING)]


def preview(data: bytes | str | None, box_width: float, box_height: float, *, deleted: bool = False) -> Flowable:
    """Return the image scaled into a box, or a grey 'Preview unavailable' box when it cannot be shown."""
    max_side = max(16, round(max(box_width, box_height) / 72 * THUMBNAIL_DPI))
    jpeg = make_thumbnail(data, max_side)
    if jpeg is None:
        reason = "image deleted" if deleted else ""
        return unavailable_box(box_width, box_height, reason)
    picture = Image(io.BytesIO(jpeg))
    scale = min(box_width / picture.imageWidth, box_height / picture.imageHeight)
    picture.drawWidth = picture.imageWidth * scale
    picture.drawHeight = picture.imageHeight * scale
    return picture


def region_map_preview(data: bytes | str | None, view: RegionMapView, box_width: float) -> Flowable:
    """Return the region-map picture (overlay and legend) scaled to box_width, or a grey box; for an animation or
    a clip it is drawn over the first frame, which the map is made of."""
    max_side = max(64, round(box_width / 72 * THUMBNAIL_DPI))
    try:
        picture_image = region_map_picture(first_picture(data or b""), view.regions, max_side)
    except ImageUnreadable:
        return unavailable_box(box_width, box_width, "image deleted" if data is None else "")
    buffer = io.BytesIO()
    picture_image.save(buffer, "JPEG", quality=88)
    picture = Image(io.BytesIO(buffer.getvalue()))
    scale = min(box_width / picture.imageWidth, box_width / picture.imageHeight)
    picture.drawWidth = picture.imageWidth * scale
    picture.drawHeight = picture.imageHeight * scale
    return picture


def unavailable_box(width: float, height: float, reason: str = "") -> Drawing:
    """Return a grey box saying that the preview is unavailable, with an optional reason below."""
    drawing = Drawing(width, height)
    drawing.add(Rect(0, 0, width, height, fillColor=PANEL, strokeColor=RULE, strokeWidth=0.8))
    size = 9 if width >= 40 * mm else 6.5
    middle = height / 2
    lines = ["Preview", "unavailable"] if width < 40 * mm else ["Preview unavailable"]
    if reason:
        lines.append(f"({reason})")
    top = middle + (len(lines) - 1) * size * 0.6
    for index, line in enumerate(lines):
        drawing.add(
            String(
                width / 2,
                top - index * size * 1.2 - size / 3,
                line,
                fontName=FONT,
                fontSize=size,
                fillColor=MUTED,
                textAnchor="middle",
            )
        )
    return drawing


def key_value_table(rows: Sequence[tuple[str, str]], width: float, key_share: float = 0.3) -> Table:
    """Return a two-column table of labels and values, both as wrapped plain text.

    Values that are long hex digests (hashes) use a smaller size so that they stay on one line.
    """
    data = [
        [Paragraph(markup(key), CELL_BOLD), Paragraph(markup(value), DIGEST if _is_digest(value) else CELL)]
        for key, value in rows
    ]
    table = Table(data, colWidths=[width * key_share, width * (1 - key_share)], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -2), 0.4, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
                ("LEFTPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return table


def _is_digest(value: str) -> bool:
    return len(value) >= 40 and all(char in "0123456789abcdefABCDEF" for char in value)


def signal_bar(score: float, width: float, height: float = 9) -> Drawing:
    """Return a diverging bar: from the middle towards 'real' (left) or 'AI' (right) by the score."""
    score = min(1.0, max(0.0, score))
    drawing = Drawing(width, height)
    drawing.add(Rect(0, 0, width, height, fillColor=PANEL, strokeColor=RULE, strokeWidth=0.5))
    middle = width / 2
    end = width * score
    colour = AI_COLOUR if score >= 0.5 else REAL_COLOUR
    drawing.add(Rect(min(middle, end), 0, abs(end - middle), height, fillColor=colour, strokeColor=None))
    drawing.add(Line(middle, -2, middle, height + 2, strokeColor=colors.black, strokeWidth=0.8))
    return drawing


def signal_scale(width: float) -> Drawing:
    """Return the axis caption drawn above the signal bars: real photograph on the left, AI on the right."""
    drawing = Drawing(width, 10)
    drawing.add(String(0, 2, "◀ real photograph", fontName=FONT, fontSize=7, fillColor=REAL_COLOUR))
    drawing.add(
        String(width / 2, 2, "neutral", fontName=FONT, fontSize=7, fillColor=MUTED, textAnchor="middle")
    )
    drawing.add(
        String(width, 2, "AI-generated ▶", fontName=FONT, fontSize=7, fillColor=AI_COLOUR, textAnchor="end")
    )
    return drawing


def signal_leaning(signal: Signal, subject: str = "image") -> str:
    """Return what a signal says in words, e.g. 'points to AI (AI score 82%)'; the real side is 'real camera
    footage' for a clip or an animation."""
    score = min(1.0, max(0.0, signal.score))
    if abs(score - 0.5) < 0.05:
        return f"neutral (AI score {percent(score)})"
    side = "AI" if score > 0.5 else ("a real photograph" if subject == "image" else "real camera footage")
    return f"points to {side} (AI score {percent(score)})"


def signal_chart(verdict: Verdict, width: float, subject: str = "image") -> Flowable:
    """Return the signals as a table: name and explanation, a diverging bar, and its reading in words."""
    if not verdict.signals:
        return Paragraph(f"The detector reported no individual signals for this {subject}.", BODY)
    total_weight = sum(max(0.0, s.weight) for s in verdict.signals) or 1.0
    text_width, bar_width = width * 0.55, width * 0.45 - 8
    data: list[list[object]] = [["", signal_scale(bar_width)]]
    for signal in verdict.signals:
        share = max(0.0, signal.weight) / total_weight
        weight = f' <font name="{FONT}" size="7.5" color="{MUTED.hexval()}">· weight {percent(share)}</font>'
        text = [
            Paragraph(markup(SIGNAL_TITLES.get(signal.name, signal.name)) + weight, CELL_BOLD),
            Paragraph(markup(signal.explanation or "No explanation given."), CELL),
        ]
        bar = [
            signal_bar(signal.score, bar_width),
            Spacer(1, 2),
            Paragraph(markup(signal_leaning(signal, subject)), SMALL),
        ]
        data.append([text, bar])
    table = Table(data, colWidths=[text_width, bar_width + 8], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 1), (-1, -2), 0.4, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
                ("LEFTPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return table


def confidence_meter(confidence: float, colour: colors.Color, width: float) -> Drawing:
    """Return a 50%..100% meter for the confidence of the chosen label, with the value marked."""
    height = 10
    drawing = Drawing(width, height + 11)
    drawing.add(Rect(0, 10, width, height, fillColor=PANEL, strokeColor=RULE, strokeWidth=0.5))
    filled = width * min(1.0, max(0.0, (confidence - 0.5) / 0.5))
    drawing.add(Rect(0, 10, filled, height, fillColor=colour, strokeColor=None))
    for value in (0.5, 0.75, 1.0):
        x = width * (value - 0.5) / 0.5
        anchor = "start" if value == 0.5 else "end" if value == 1.0 else "middle"
        drawing.add(
            String(x, 1, percent(value), fontName=FONT, fontSize=6.5, fillColor=MUTED, textAnchor=anchor)
        )
    return drawing


def bold_line(text: str, size: float, colour: colors.Color) -> Paragraph:
    """Return one line of bold coloured text as a paragraph in the report fonts."""
    line_style = ParagraphStyle(
        "bold-line", fontName=FONT_BOLD, fontSize=size, leading=size * 1.25, textColor=colour
    )
    return Paragraph(markup(text), line_style)


def reading_guide(width: float, *, with_signals: bool) -> Table:
    """Return the boxed 'how to read this' note; the signal-bar sentence only when bars are shown."""
    first = " ".join(
        part
        for part in (
            HOW_TO_READ_CONFIDENCE,
            HOW_TO_READ_SIGNALS if with_signals else "",
            HOW_TO_READ_CREDENTIALS,
        )
        if part
    )
    table = Table([[[Paragraph(first, NOTE), Paragraph(CANNOT_SEE, NOTE)]]], colWidths=[width], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), PANEL),
                ("BOX", (0, 0), (-1, -1), 0.6, RULE),
                ("LEFTPADDING", (0, 0), (-1, -1), 3 * mm),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3 * mm),
                ("TOPPADDING", (0, 0), (-1, -1), 2.5 * mm),
            ]
        )
    )
    return table
