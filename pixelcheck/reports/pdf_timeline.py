"""The timeline section of an animation's PDF: P(AI) of each frame read over time, the AI segments shaded, and
a few key frames as thumbnails; and the same timeline in small for a batch report's row."""

from __future__ import annotations

import io

from reportlab.graphics.shapes import Circle, Drawing, Line, PolyLine, Rect, String
from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Image, KeepTogether, Paragraph, Spacer, Table, TableStyle

from pixelcheck.analysis.detector.animation import picked_frames
from pixelcheck.analysis.detector.timeline import clock
from pixelcheck.analysis.detector.verdict import FrameVerdict, Label, Timeline
from pixelcheck.reports.document import ReportEntry
from pixelcheck.reports.pdf_parts import heading
from pixelcheck.reports.pdf_style import AI_COLOUR, BODY, FONT, INK, MUTED, PANEL, REAL_COLOUR, RULE, SMALL, markup

CHART_HEIGHT = 48 * mm
STRIP_HEIGHT = 8 * mm  # a batch report's row
KEY_FRAMES = 4
HOW_TO_READ_TIMELINE = (
    "How to read the timeline: each dot is one frame the pixel model read, placed at its time and at how "
    "AI-like it reads (0% real, 100% AI-generated); shaded stretches read as generated. The verdict above "
    "weighs all frames read together with what the file says about its origin."
)


def timeline_section(entry: ReportEntry, width: float) -> list[Flowable]:
    """The section for an animation (none for a still picture)."""
    timeline = entry.verdict.timeline if entry.verdict else None
    if timeline is None:
        return []
    counts = (f"{timeline.frames_read} of {timeline.frames_in_file} frames read over {clock(timeline.duration_ms)}"
              + (f"; {timeline.frames_skipped} could not be decoded and were skipped" if timeline.frames_skipped
                 else "") + ". " + timeline.sampling_policy)
    parts: list[Flowable] = [Paragraph(markup(timeline.summary), BODY), Spacer(1, 2 * mm)]
    if timeline.frames:
        parts += [timeline_chart(timeline, width), Spacer(1, 2 * mm)]
    parts.append(Paragraph(markup(counts), SMALL))
    parts.append(Paragraph(markup(HOW_TO_READ_TIMELINE), SMALL))
    section: list[Flowable] = [KeepTogether(heading("Frame by frame") + parts)]
    thumbnails = key_frame_table(entry.picture, timeline, width)
    if thumbnails is not None:
        section.append(KeepTogether(heading("Key frames") + [thumbnails]))
    return section


def timeline_chart(timeline: Timeline, width: float) -> Drawing:
    """P(AI) of each frame read against its time, with the AI segments shaded."""
    left, bottom, top = 12 * mm, 7 * mm, 3 * mm
    plot_width, plot_height = width - left - 2 * mm, CHART_HEIGHT - bottom - top
    duration = max(timeline.duration_ms, 1)
    drawing = Drawing(width, CHART_HEIGHT)
    plot = _Plot(left, bottom, plot_width, plot_height, duration)
    _draw(drawing, timeline, plot, dot=1.6)
    for prob in (0.0, 0.5, 1.0):
        drawing.add(String(left - 1.5 * mm, plot.y(prob) - 2.5, f"{prob:.0%}", fontName=FONT, fontSize=7,
                           fillColor=MUTED, textAnchor="end"))
    for step in range(5):
        ms = duration * step / 4
        drawing.add(String(plot.x(ms), bottom - 5 * mm, clock(int(ms)), fontName=FONT, fontSize=7, fillColor=MUTED,
                           textAnchor="middle"))
    return drawing


def timeline_strip(timeline: Timeline, width: float, height: float = STRIP_HEIGHT) -> Drawing:
    """The timeline chart in small, for a row of a batch report: the frames' P(AI) over time with the AI segments
    shaded and the 50% line, without axes; the clip's length is written at its right end."""
    label_width = 9 * mm
    drawing = Drawing(width, height)
    _draw(drawing, timeline, _Plot(0, 0.5, width - label_width, height - 1, max(timeline.duration_ms, 1)), dot=0.9)
    drawing.add(String(width, height / 2 - 2.5, clock(timeline.duration_ms), fontName=FONT, fontSize=6.5,
                       fillColor=MUTED, textAnchor="end"))
    return drawing


class _Plot:
    """Where a timeline is drawn: a box and the duration its width stands for."""

    def __init__(self, left: float, bottom: float, width: float, height: float, duration_ms: int) -> None:
        self.left, self.bottom, self.width, self.height, self.duration = left, bottom, width, height, duration_ms

    def x(self, ms: float) -> float:
        return self.left + self.width * min(max(ms / self.duration, 0.0), 1.0)

    def y(self, prob: float) -> float:
        return self.bottom + self.height * prob


def _draw(drawing: Drawing, timeline: Timeline, plot: _Plot, *, dot: float) -> None:
    """The box, the shaded AI segments, the 0/50/100% lines and the frames' readings joined in time order."""
    drawing.add(Rect(plot.left, plot.bottom, plot.width, plot.height, fillColor=PANEL, strokeColor=RULE,
                     strokeWidth=0.5))
    shade = colors.Color(AI_COLOUR.red, AI_COLOUR.green, AI_COLOUR.blue, alpha=0.18)
    for segment in timeline.segments:
        drawing.add(Rect(plot.x(segment.start_ms), plot.bottom,
                         max(plot.x(segment.end_ms) - plot.x(segment.start_ms), 0.8), plot.height,
                         fillColor=shade, strokeColor=None))
    for prob in (0.0, 0.5, 1.0):
        drawing.add(Line(plot.left, plot.y(prob), plot.left + plot.width, plot.y(prob), strokeColor=RULE,
                         strokeWidth=0.4, strokeDashArray=[2, 2] if prob == 0.5 else None))
    points = [(plot.x(f.time_ms), plot.y(f.prob_ai)) for f in timeline.frames]
    if len(points) > 1:
        drawing.add(PolyLine([c for point in points for c in point], strokeColor=INK, strokeWidth=0.8))
    for frame, (px, py) in zip(timeline.frames, points, strict=True):
        colour = AI_COLOUR if frame.label is Label.AI else REAL_COLOUR
        drawing.add(Circle(px, py, dot, fillColor=colour, strokeColor=colour))


def key_frames(timeline: Timeline, count: int = KEY_FRAMES) -> list[FrameVerdict]:
    """The first and last frames read, the most AI-like one and the start of each AI segment, in time order."""
    if not timeline.frames:
        return []
    starts = {s.start_ms for s in timeline.segments}
    chosen = [timeline.frames[0], max(timeline.frames, key=lambda f: f.prob_ai)]
    chosen += [f for f in timeline.frames if f.time_ms in starts]
    chosen.append(timeline.frames[-1])
    unique = {f.index: f for f in chosen}
    return sorted(unique.values(), key=lambda f: f.time_ms)[:count]


def key_frame_table(data: bytes | str | None, timeline: Timeline, width: float) -> Table | None:
    """Thumbnails of the key frames with their time and reading (data: the file's bytes, or a clip's path); None
    when the file is gone or unreadable."""
    frames = key_frames(timeline)
    if not data or not frames:
        return None
    wanted = {f.index: f for f in frames}
    side = (width - 4 * mm * len(frames)) / KEY_FRAMES
    cells: list[list[Flowable]] = []
    try:
        for decoded in picked_frames(data, wanted):
            frame = wanted.get(decoded.index)
            if frame is None or decoded.picture is None:
                continue
            picture = decoded.picture.copy()
            picture.thumbnail((round(side / 72 * 150), round(side / 72 * 150)))
            buffer = io.BytesIO()
            picture.save(buffer, "JPEG", quality=85)
            flowable = Image(io.BytesIO(buffer.getvalue()))
            scale = min(side / flowable.imageWidth, side / flowable.imageHeight)
            flowable.drawWidth, flowable.drawHeight = flowable.imageWidth * scale, flowable.imageHeight * scale
            caption = f"{clock(frame.time_ms)} · frame {frame.index} · {frame.prob_ai:.0%} AI"
            cells.append([flowable, Paragraph(markup(caption), SMALL)])
    except Exception:  # a damaged file leaves the report without thumbnails, never without the report
        return None
    if not cells:
        return None
    table = Table([cells], colWidths=[side + 4 * mm] * len(cells), hAlign="LEFT")
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (0, 0), (-1, -1), "CENTER")]))
    return table
