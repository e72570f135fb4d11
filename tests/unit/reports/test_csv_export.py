"""CSV export: stable header, RFC 4180 round trip, UTF-8, formula neutralisation, every entry listed."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from pixelcheck.analysis.detector.verdict import Signal
from pixelcheck.reports.csv_export import CSV_HEADER, neutralise_cell, render_csv
from pixelcheck.reports.document import EntryState


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_csv_header_is_the_documented_stable_header(samples):
    rows = parse(render_csv(samples.document((samples.entry(),))))

    assert tuple(rows[0]) == CSV_HEADER
    assert CSV_HEADER == (
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


def test_csv_parses_back_to_the_same_values_for_awkward_filenames(samples):
    names = [
        'holiday, "best" shot.jpg',
        "two\nlines\r\nname.png",
        "Москва_ночью — Αθήνα — café.jpg",
        "東京タワー 夜景.jpg",
        "emoji 📷 photo.webp",
        "semi;colon\ttab.jpg",
    ]
    entries = tuple(samples.entry(f"img-{i}", name) for i, name in enumerate(names))

    rows = parse(render_csv(samples.document(entries)))

    assert len(rows) == 1 + len(names)
    for row, entry in zip(rows[1:], entries, strict=True):
        record = dict(zip(CSV_HEADER, row, strict=True))
        assert record["image_id"] == entry.image_id
        assert record["filename"] == entry.filename
        assert record["sha256"] == entry.sha256
        assert record["label"] == "AI"
        assert record["confidence"] == "0.9300"
        assert float(record["prob_ai"]) == entry.verdict.prob_ai
        assert record["confidence_band"] == "HIGH"
        assert record["model_version"] == samples.MODEL_VERSION
        assert record["analysed_at"] == "2025-11-26T15:50:12Z"
        assert record["state"] == "SUCCEEDED"


def test_csv_uses_crlf_line_ends_and_doubles_quotes(samples):
    data = render_csv(samples.document((samples.entry(filename='say "cheese", please.jpg'),)))

    assert data.endswith(b"\r\n")
    assert data.count(b"\r\n") == 2
    assert b'"say ""cheese"", please.jpg"' in data


def test_csv_is_utf8_without_byte_order_mark(samples):
    data = render_csv(samples.document((samples.entry(filename="Ελλάδα_Жук_Zoë.jpg"),)))

    assert not data.startswith(b"\xef\xbb\xbf")
    assert "Ελλάδα_Жук_Zoë.jpg".encode() in data


def test_csv_neutralises_formula_cells(samples):
    names = ['=HYPERLINK("http://x")', "+1+2", "-3", "@SUM(A1)", "\t=cmd", "\r=cmd", "plain=name.jpg"]
    entries = tuple(samples.entry(f"img-{i}", name) for i, name in enumerate(names))

    rows = parse(render_csv(samples.document(entries)))

    filenames = [row[1] for row in rows[1:]]
    assert filenames == [
        '\'=HYPERLINK("http://x")',
        "'+1+2",
        "'-3",
        "'@SUM(A1)",
        "'\t=cmd",
        "'\r=cmd",
        "plain=name.jpg",
    ]
    assert neutralise_cell("0.9300") == "0.9300"


def test_csv_neutralises_formula_in_every_column(samples):
    entry = samples.entry(image_id="=1+1", sha256="@abc")

    row = parse(render_csv(samples.document((entry,))))[1]

    assert row[0] == "'=1+1"
    assert row[2] == "'@abc"


def test_csv_lists_pending_failed_and_deleted_images_with_empty_verdict_columns(samples):
    entries = (
        samples.entry("q", "queued.jpg", state=EntryState.QUEUED),
        samples.entry("r", "running.jpg", state=EntryState.RUNNING),
        samples.entry("f", "failed.jpg", state=EntryState.FAILED, failure_reason="not an image"),
        samples.entry("d", "deleted.jpg", state=EntryState.DELETED),
    )

    rows = parse(render_csv(samples.document(entries)))

    assert [(row[0], row[9]) for row in rows[1:]] == [
        ("q", "QUEUED"),
        ("r", "RUNNING"),
        ("f", "FAILED"),
        ("d", "DELETED"),
    ]
    for row in rows[1:]:
        assert row[3:9] == ["", "", "", "", "", ""]
        assert row[10] == ""


def test_csv_keeps_the_verdict_of_an_image_deleted_after_analysis(samples):
    entry = samples.entry(
        "gone", "gone.jpg", state=EntryState.DELETED, verdict=samples.real_verdict(), image_bytes=None
    )

    record = dict(zip(CSV_HEADER, parse(render_csv(samples.document((entry,))))[1], strict=True))

    assert record["state"] == "DELETED"
    assert record["label"] == "REAL"
    assert record["confidence"] == "0.8100"
    assert record["prob_ai"] == "0.1900"
    assert record["confidence_band"] == "MEDIUM"


def test_csv_top_signals_lists_the_three_that_moved_the_verdict_most(samples):
    verdict = samples.ai_verdict()
    signals = (
        Signal("weak", 0.55, 0.9, "barely moves"),
        Signal("strong", 0.98, 0.5, "moves a lot"),
        Signal("against", 0.05, 0.4, "points the other way"),
        Signal("minor", 0.8, 0.1, "small weight"),
    )
    entry = samples.entry(verdict=replace(verdict, signals=signals))

    row = parse(render_csv(samples.document((entry,))))[1]

    assert row[10] == "strong=0.98; against=0.05; weak=0.55"


def test_csv_writes_finish_times_in_utc(samples):
    local = datetime(2025, 11, 26, 17, 50, 12, tzinfo=timezone(timedelta(hours=2)))
    entry = samples.entry(analysed_at=local)

    row = parse(render_csv(samples.document((entry,))))[1]

    assert row[8] == "2025-11-26T15:50:12Z"


def test_csv_of_an_empty_report_is_the_header_alone(samples):
    data = render_csv(samples.document(()))

    assert parse(data) == [list(CSV_HEADER)]


def test_csv_carries_the_generator_family_and_stability(samples):
    from pixelcheck.analysis.detector.verdict import GeneratorFamily, Stability

    family = GeneratorFamily("flux", "FLUX", 0.81, "sdxl", "SDXL family", 0.12, False, "most resembles FLUX")
    shaky = Stability(False, True, False, 0.31, 0.7, 0.8, "The pixel verdict is not stable: a copy ...")
    named = replace(samples.entry().verdict, generator_family=family, stability=shaky)
    unknown = replace(named, generator_family=replace(family, family="", name="", unknown=True),
                      stability=replace(shaky, stable=True, flips_when_shared=False, explanation=""))
    rows = parse(render_csv(samples.document((samples.entry(verdict=named), samples.entry(verdict=unknown)))))
    header = rows[0]
    cells = [dict(zip(header, row, strict=True)) for row in rows[1:]]

    assert [(c["generator_family"], c["generator_family_probability"], c["generator_runner_up"]) for c in cells] == [
        ("flux", "0.8100", "sdxl"),
        ("unknown", "0.8100", ""),
    ]
    assert [(c["stable"], c["stability_note"]) for c in cells] == [
        ("no", "The pixel verdict is not stable: a copy ..."),
        ("yes", ""),
    ]
