"""PDF rendering of a report: one layout for a single image, another for a batch."""

from __future__ import annotations

import io
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import SimpleDocTemplate

from pixelcheck.reports.document import ReportDocument
from pixelcheck.reports.pdf_batch import batch_story
from pixelcheck.reports.pdf_single import single_story
from pixelcheck.reports.pdf_style import FONT, MUTED, RULE, register_fonts, safe_text

PRODUCER = "PixelCheck"
MARGIN = 18 * mm


def render_pdf(doc: ReportDocument) -> bytes:
    """Render a report as PDF bytes: the single-image layout for one entry, the batch layout otherwise.

    The PDF embeds its fonts, carries title, author (the report owner) and subject metadata, and
    numbers its pages. Entries that are pending, failed or deleted are shown as such.
    """
    register_fonts()
    buffer = io.BytesIO()
    single = len(doc.entries) == 1
    subject = (
        f"PixelCheck analysis of {doc.entries[0].filename}"
        if single
        else f"PixelCheck analysis of {len(doc.entries)} images"
    )
    template = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 4 * mm,
        title=doc.title,
        author=doc.author,
        subject=subject,
        creator=PRODUCER,
        producer=PRODUCER,
        keywords=["PixelCheck", "AI image detection", doc.report_id],
        lang="en",
        displayDocTitle=True,
        initialFontName=FONT,
    )
    story = single_story(doc, template.width) if single else batch_story(doc, template.width)
    template.build(story, canvasmaker=_footer_canvas(f"PixelCheck · report {doc.report_id}"))
    return buffer.getvalue()


def _footer_canvas(label: str) -> type[Canvas]:
    """Return a canvas class that writes '<label> · Page n of m' at the foot of every page."""
    footer_label = safe_text(label, keep_cjk=False)

    class FooterCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 - reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self._draw_footer(number, total)
                super().showPage()
            super().save()

        def _draw_footer(self, number: int, total: int) -> None:
            width, _ = self._pagesize
            self.saveState()
            self.setStrokeColor(RULE)
            self.setLineWidth(0.5)
            self.line(MARGIN, MARGIN, width - MARGIN, MARGIN)
            self.setFont(FONT, 7.5)
            self.setFillColor(MUTED)
            self.drawString(MARGIN, MARGIN - 11, footer_label)
            self.drawRightString(width - MARGIN, MARGIN - 11, f"Page {number} of {total}")
            self.restoreState()

    return FooterCanvas
