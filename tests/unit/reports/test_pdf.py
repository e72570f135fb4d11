"""PDF reports: what a reader finds in the text of single and batch reports, metadata and fonts."""

from __future__ import annotations

import re
from dataclasses import replace

from pixelcheck.analysis.detector.verdict import Band
from pixelcheck.reports.document import EntryState
from pixelcheck.reports.pdf import render_pdf
from tests.pdf_reading import pdf_info, pdf_text


def test_render_pdf_returns_a_pdf_document(samples):
    pdf = render_pdf(samples.document((samples.entry(),)))

    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")


def test_single_pdf_text_contains_verdict_confidence_and_model_version(samples):
    text = pdf_text(render_pdf(samples.document((samples.entry(),))))

    assert "Likely AI-generated" in text
    assert "93% (high confidence)" in text
    assert samples.MODEL_VERSION in text


def test_single_pdf_explains_signals_provenance_facts_and_identifies_the_analysis(samples):
    entry = samples.entry(verdict=samples.real_verdict())

    text = pdf_text(render_pdf(samples.document((entry,))))

    assert "Likely a real photograph" in text
    assert "81% (medium confidence)" in text
    assert "Sensor noise and lens blur look like those of a real camera." in text
    assert "Present and intact: the signature verifies" in text
    assert "captured by a camera" in text
    assert "Leica Camera AG" in text
    assert "Leica M11-P" in text
    assert "JPEG quality (estimated) 92 of 100" in text
    assert "320 × 240 pixels" in text
    assert samples.WEIGHTS_SHA256 in text
    assert entry.analysis_id in text
    assert entry.sha256 in text
    assert "How to read this report" in text
    assert "What the detector cannot see" in text


def test_single_pdf_names_generator_metadata_found_in_the_file(samples):
    text = pdf_text(render_pdf(samples.document((samples.entry(),))))

    assert "Stable Diffusion: AUTOMATIC1111 parameters in PNG text chunk" in text
    assert "No Content Credentials in the file" in text
    assert "points to AI (AI score 91%)" in text


def test_pdf_metadata_has_title_author_and_subject(samples):
    doc = samples.document(
        (samples.entry(filename="harbour.jpg"),), title="Проверка — Έλεγχος", author="Zoë Ørsted"
    )

    info = pdf_info(render_pdf(doc))

    assert info["Title"] == "Проверка — Έλεγχος"
    assert info["Author"] == "Zoë Ørsted"
    assert info["Subject"] == "PixelCheck analysis of harbour.jpg"
    assert info["Producer"] == "PixelCheck"


def test_latin1_greek_and_cyrillic_titles_and_filenames_render_as_text(samples):
    entry = samples.entry(filename="Ελληνικά_Кириллица_façade_Ærø.jpg")
    doc = samples.document((entry,), title="Отчёт по снимкам — Αναφορά — Crème brûlée")

    text = pdf_text(render_pdf(doc))

    assert "Отчёт по снимкам — Αναφορά — Crème brûlée" in text
    assert "Ελληνικά_Кириллица_façade_Ærø.jpg" in text
    assert "Zoë Ørsted" in text


def test_cjk_filenames_are_kept_as_text(samples):
    entry = samples.entry(filename="東京タワー_서울_北京.jpg")

    text = pdf_text(
        render_pdf(samples.document((entry, samples.entry("img-2")), title="写真の検査"))
    )

    assert "写真の検査" in text
    assert "東京タワー_서울_北京.jpg" in text


def test_characters_without_a_glyph_become_a_replacement_mark_not_nothing(samples):
    entry = samples.entry(filename="camera 📷 shot.jpg")

    text = pdf_text(render_pdf(samples.document((entry,))))

    assert "camera \ufffd shot.jpg" in text


def test_pdf_embeds_the_shipped_unicode_font(samples):
    pdf = render_pdf(samples.document((samples.entry(filename="Жук.jpg"),)))

    assert b"DejaVuSans" in pdf
    assert b"/FontFile2" in pdf


def test_report_over_an_image_deleted_afterwards_renders_and_says_so(samples):
    entry = samples.entry(state=EntryState.DELETED, verdict=samples.ai_verdict(), image_bytes=None)

    text = pdf_text(render_pdf(samples.document((entry,))))

    assert "Likely AI-generated" in text
    assert "The image was deleted after analysis" in text
    assert "Preview unavailable" in text
    assert "Image deleted" in text


def test_single_pdf_of_a_failed_analysis_gives_the_reason(samples):
    entry = samples.entry(
        state=EntryState.FAILED, data=b"\x00garbage", failure_reason="The file is truncated."
    )

    text = pdf_text(render_pdf(samples.document((entry,))))

    assert "Analysis failed" in text
    assert "The file is truncated." in text
    assert "Preview unavailable" in text


def test_single_pdf_of_a_queued_image_says_it_is_pending(samples):
    text = pdf_text(render_pdf(samples.document((samples.entry(state=EntryState.QUEUED),))))

    assert "Pending: waiting for analysis" in text


def test_single_pdf_with_undecodable_image_bytes_still_renders(samples):
    entry = samples.entry(data=b"\xff\xd8\xff\xe0 this is not really a jpeg")

    assert render_pdf(samples.document((entry,))).startswith(b"%PDF-")


def batch_entries(samples):
    return (
        samples.entry("img-1", "sunset.png", verdict=samples.ai_verdict(0.97)),
        samples.entry("img-2", "portrait.jpg", verdict=samples.real_verdict(0.88, Band.HIGH)),
        samples.entry("img-3", "market.jpg", verdict=samples.ai_verdict(0.62, Band.LOW)),
        samples.entry("img-4", "waiting.jpg", state=EntryState.QUEUED),
        samples.entry("img-5", "in_progress.jpg", state=EntryState.RUNNING),
        samples.entry("img-6", "broken.jpg", state=EntryState.FAILED, failure_reason="Unsupported format."),
        samples.entry("img-7", "removed.jpg", state=EntryState.DELETED),
        samples.entry(
            "img-8",
            "removed_later.jpg",
            state=EntryState.DELETED,
            verdict=samples.ai_verdict(),
            image_bytes=None,
        ),
    )


def test_batch_pdf_lists_pending_failed_and_deleted_images_instead_of_dropping_them(samples):
    text = pdf_text(render_pdf(samples.document(batch_entries(samples))))

    for name in (
        "sunset.png",
        "portrait.jpg",
        "market.jpg",
        "waiting.jpg",
        "in_progress.jpg",
        "broken.jpg",
        "removed.jpg",
        "removed_later.jpg",
    ):
        assert name in text
    assert "Pending: waiting for analysis" in text
    assert "Pending: analysis in progress" in text
    assert "Reason: Unsupported format." in text
    assert "Image deleted before a verdict was recorded" in text
    assert "The image was deleted after analysis" in text


def test_batch_pdf_summary_counts_labels_and_reports_mean_analysis_time(samples):
    entries = batch_entries(samples)
    entries = (replace(entries[0], duration_ms=600), replace(entries[1], duration_ms=1000), *entries[2:])

    text = pdf_text(render_pdf(samples.document(entries)))

    assert "Likely AI-generated 3" in text
    assert "Likely a real photograph 1" in text
    assert "Pending (waiting or being analysed) 2" in text
    assert "Analysis failed 1" in text
    assert "Image deleted before analysis 1" in text
    assert "Total 8" in text
    # (600 + 1000 + 840 + 840) / 4 analysed images
    assert "820 ms per image (over 4 analysed images)" in text
    assert "How confident the verdicts are" in text


def test_batch_pdf_rows_show_verdict_and_confidence_with_the_model_version(samples):
    pdf = render_pdf(samples.document(batch_entries(samples)))
    lines = pdf_text(pdf, layout=True).splitlines()

    def row_around(filename: str) -> str:
        index = next(i for i, line in enumerate(lines) if filename in line)
        return " ".join(lines[index - 1 : index + 5])

    assert re.search(r"Likely AI-generated.*high", row_around("sunset.png"))
    assert "97%" in row_around("sunset.png")
    assert re.search(r"Likely a real photograph.*high", row_around("portrait.jpg"))
    assert "88%" in row_around("portrait.jpg")
    assert re.search(r"Likely AI-generated.*low", row_around("market.jpg"))
    assert "62%" in row_around("market.jpg")
    assert samples.MODEL_VERSION in pdf_text(pdf)


def test_large_batch_pdf_spreads_over_numbered_pages(samples):
    entries = tuple(samples.entry(f"img-{i}", f"frame_{i:03d}.jpg") for i in range(40))

    text = pdf_text(render_pdf(samples.document(entries)))

    pages = int(re.search(r"Page 1 of (\d+)", text).group(1))
    assert pages >= 4
    assert f"Page {pages} of {pages}" in text
    assert "frame_000.jpg" in text and "frame_039.jpg" in text


def test_batch_pdf_without_any_verdict_still_renders_its_summary(samples):
    entries = (samples.entry("a", state=EntryState.QUEUED), samples.entry("b", state=EntryState.FAILED))

    text = pdf_text(render_pdf(samples.document(entries)))

    assert "No image has a verdict yet" in text
    assert "not recorded for these images" in text


def test_single_pdf_without_model_info_shows_the_verdicts_model_version(samples):
    doc = replace(samples.document((samples.entry(),)), model=None)

    text = pdf_text(render_pdf(doc))

    assert f"Model version {samples.MODEL_VERSION}" in text


def test_empty_report_renders_a_summary_with_zero_images(samples):
    text = pdf_text(render_pdf(samples.document(())))

    assert "Total 0" in text
