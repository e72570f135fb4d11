"""The one-image PDF layout: verdict first, then the evidence, provenance, facts and a reading guide."""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Paragraph, Spacer, Table, TableStyle

from pixelcheck.analysis.detector.verdict import ModelInfo, Provenance, SignatureState, Verdict
from pixelcheck.reports.document import EntryState, ReportDocument, ReportEntry
from pixelcheck.reports.pdf_parts import (
    bold_line,
    confidence_meter,
    heading,
    key_value_table,
    preview,
    reading_guide,
    region_map_preview,
    signal_chart,
)
from pixelcheck.reports.pdf_style import (
    BODY,
    HOW_TO_READ_REGION_MAP,
    PANEL,
    RULE,
    SIGNATURE_WORDS,
    SMALL,
    STATE_WORDS,
    SUBTITLE,
    TITLE,
    confidence_words,
    entry_note,
    entry_status,
    format_bytes,
    format_datetime,
    format_duration,
    markup,
    source_type_words,
    subject_of,
    verdict_words,
)
from pixelcheck.reports.pdf_timeline import timeline_section

THUMB_SIDE = 62 * mm


def single_story(doc: ReportDocument, width: float) -> list[Flowable]:
    """Return the flowables of a one-image report, laid out for a frame of the given width."""
    entry = doc.entries[0]
    subject = subject_of(entry)
    story: list[Flowable] = [
        Paragraph(markup(doc.title or f"{subject.capitalize()} analysis report"), TITLE),
        Paragraph(markup(_byline(doc, subject)), SUBTITLE),
        Spacer(1, 4 * mm),
        _verdict_panel(entry, width),
    ]
    verdict = entry.verdict
    if verdict is not None:
        story += timeline_section(entry, width)
        story += region_map_section(entry, width)
        story += heading("What the detector looked at")
        story.append(signal_chart(verdict, width, subject))
        story.append(
            KeepTogether(
                heading(f"Where the {subject} came from")
                + [key_value_table(provenance_rows(verdict.provenance), width)]
            )
        )
    story.append(KeepTogether(heading(f"About the {subject}") + [key_value_table(image_fact_rows(entry), width)]))
    story.append(
        KeepTogether(
            heading("About the analysis") + [key_value_table(analysis_rows(entry, doc.model), width)]
        )
    )
    story.append(Spacer(1, 5 * mm))
    story.append(KeepTogether(reading_guide(width, with_signals=verdict is not None)))
    return story


def region_map_section(entry: ReportEntry, width: float) -> list[Flowable]:
    """The image and its region map side by side, the line on how to read it and any disagreement (of an
    animation or a clip: its first frame, which the map is made of)."""
    view = entry.region_map
    if view is None:
        return []
    subject = subject_of(entry)
    title = "Where in the image" if subject == "image" else f"Where in the {subject}'s first frame"
    if view.state != "READY":
        why = view.reason or "it was still being made when this report was built; request the report again later"
        return [KeepTogether(heading(title) + [Paragraph(markup(f"No region map: {why}"), BODY)])]
    side = (width - 8 * mm) / 2
    pictures = Table([[preview(entry.picture, side, side), region_map_preview(entry.picture, view, side)]],
                     colWidths=[side + 4 * mm, side + 4 * mm], hAlign="LEFT")
    pictures.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("ALIGN", (0, 0), (-1, -1), "CENTER")]))
    notes: list[Flowable] = [Spacer(1, 2 * mm), Paragraph(markup(HOW_TO_READ_REGION_MAP), SMALL)]
    if view.disagreement:
        notes = [Spacer(1, 2 * mm), Paragraph(markup(view.disagreement), BODY), *notes]
    return [KeepTogether(heading(title) + [pictures, *notes])]


def _byline(doc: ReportDocument, subject: str) -> str:
    parts = [f"{subject.capitalize()} analysis report · created {format_datetime(doc.created_at)}"]
    if doc.author:
        parts.append(f"prepared for {doc.author}")
    return " · ".join(parts)


def _verdict_panel(entry: ReportEntry, width: float) -> Table:
    thumbnail = preview(
        entry.picture,
        THUMB_SIDE,
        THUMB_SIDE,
        deleted=entry.image_bytes is None and entry.state is EntryState.DELETED,
    )
    text_width = width - THUMB_SIDE - 14 * mm
    words, colour = entry_status(entry)
    right: list[Flowable] = [bold_line(words, 18, colour), Spacer(1, 3 * mm)]
    verdict = entry.verdict
    if verdict is not None:
        right += [
            Paragraph(markup(f"Confidence: {confidence_words(verdict)}"), BODY),
            Spacer(1, 1.5 * mm),
            confidence_meter(verdict.confidence, colour, min(text_width, 70 * mm)),
            Spacer(1, 3 * mm),
            Paragraph(markup(verdict.summary or default_summary(verdict, subject_of(entry))), BODY),
        ]
        right += [Paragraph(markup(line), SMALL) for line in finding_lines(verdict, subject_of(entry))]
    note = entry_note(entry)
    if note:
        right += [Spacer(1, 2 * mm), Paragraph(markup(note), BODY)]
    right += [Spacer(1, 3 * mm), Paragraph(markup(f"File: {entry.filename or '(no name)'}"), SMALL)]
    table = Table([[thumbnail, right]], colWidths=[THUMB_SIDE + 6 * mm, text_width + 8 * mm], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("ALIGN", (0, 0), (0, 0), "CENTER"),
                ("BACKGROUND", (0, 0), (-1, -1), PANEL),
                ("BOX", (0, 0), (-1, -1), 0.6, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 3 * mm),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3 * mm),
                ("LEFTPADDING", (0, 0), (-1, -1), 3 * mm),
            ]
        )
    )
    return table


def finding_lines(verdict: Verdict, subject: str = "image") -> list[str]:
    """The generator-family and stability findings of a verdict, one plain line each (none when absent)."""
    lines = []
    family = verdict.generator_family
    if family is not None:
        lines.append(
            "Generator family: unknown (none is likely enough to name)"
            if family.unknown
            else f"Generator family: {family.name} ({family.probability:.0%}); runner-up "
            f"{family.runner_up_name} ({family.runner_up_probability:.0%})"
        )
    stability = verdict.stability
    if stability is not None:
        lines.append(
            f"Stability: the verdict holds for a messaging-app copy (1080 px, JPEG q80) and the {subject}'s parts agree"
            if stability.stable
            else "Stability: NOT stable, see above"
        )
    return lines


def default_summary(verdict: Verdict, subject: str = "image") -> str:
    """Return a one-sentence summary for a verdict that came without one, about the subject ("image", "clip" or
    "animation")."""
    words = verdict_words(verdict.label, subject).lower()
    return f"The detector judges this {subject} {words} ({confidence_words(verdict)})."


def provenance_rows(provenance: Provenance) -> list[tuple[str, str]]:
    """Return the provenance findings as label/value rows in plain language."""
    credentials = SIGNATURE_WORDS[provenance.c2pa_signature]
    if provenance.c2pa_present and provenance.c2pa_signature is SignatureState.ABSENT:
        credentials = "Present, but their signature was not checked"
    rows = [("Content Credentials (C2PA)", credentials)]
    if provenance.c2pa_digital_source_type:
        rows.append(("Declared source", source_type_words(provenance.c2pa_digital_source_type)))
    if provenance.c2pa_claim_generator:
        rows.append(("Made or edited with", provenance.c2pa_claim_generator))
    if provenance.c2pa_signer:
        rows.append(("Signed by", provenance.c2pa_signer))
    if provenance.c2pa_validation_errors:
        rows.append(("Credential problems", "\n".join(provenance.c2pa_validation_errors)))
    generator = ", ".join(provenance.generator_metadata) or "None found"
    if provenance.generator_name:
        generator = f"{provenance.generator_name}: {generator}"
    rows.append(("AI generator traces in the file", generator))
    camera = " ".join(part for part in (provenance.camera_make, provenance.camera_model) if part)
    rows.append(("Camera data", camera or "None recorded"))
    if provenance.software:
        rows.append(("Software named in the file", provenance.software))
    if provenance.invisible_watermarks:
        rows.append(("Invisible watermark in the pixels", "\n".join(provenance.invisible_watermarks)))
    return rows


def image_fact_rows(entry: ReportEntry) -> list[tuple[str, str]]:
    """Return what is known about the image file as label/value rows."""
    facts = entry.verdict.image_facts if entry.verdict else None
    width, height = (facts.width, facts.height) if facts else (entry.width, entry.height)
    size = facts.size_bytes if facts else entry.size_bytes
    rows = [
        ("File name", entry.filename or "(no name)"),
        ("Format", facts.format if facts else entry.content_type or "unknown"),
        ("Dimensions", f"{width} × {height} pixels"),
        ("File size", format_bytes(size)),
    ]
    if facts and facts.jpeg_quality is not None:
        rows.append(("JPEG quality (estimated)", f"{facts.jpeg_quality} of 100"))
    if facts:
        rows.append(("Camera metadata (EXIF)", "present" if facts.has_exif else "none"))
    rows.append(("SHA-256 fingerprint", entry.sha256 or "—"))
    rows.append(("Image id", entry.image_id))
    return rows


def analysis_rows(entry: ReportEntry, model: ModelInfo | None) -> list[tuple[str, str]]:
    """Return who analysed the image, when and with which model, as label/value rows."""
    used = entry.verdict.model_version if entry.verdict else ""
    rows = [("Status", STATE_WORDS[entry.state])]
    if model is not None:
        rows.append(("Model", f"{model.name} {model.version}"))
        if used and used != model.version:
            rows.append((f"Model version used for this {subject_of(entry)}", used))
        rows.append(("Model weights (SHA-256)", model.weights_sha256 or "—"))
    elif used:
        rows.append(("Model version", used))
    rows += [
        ("Analysis id", entry.analysis_id or "—"),
        ("Analysed at", format_datetime(entry.analysed_at)),
        ("Analysis time", format_duration(entry.duration_ms)),
    ]
    return rows
