"""The single-image PDF shows the region map next to the thumbnail and names an invisible watermark."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pixelcheck.analysis.detector.regions import RegionMapView, RegionScore, region_grid
from pixelcheck.reports.pdf import render_pdf
from tests.pdf_reading import pdf_image_count, pdf_text


def ready_map(width: int, height: int, probs: list[float] | None = None, disagreement: str = "") -> RegionMapView:
    grid = region_grid(width, height)
    assert grid is not None
    values = probs or [(i % grid.columns) / max(1, grid.columns - 1) for i in range(len(grid.boxes))]
    regions = tuple(RegionScore(i // grid.columns, i % grid.columns, box, p)
                    for i, (box, p) in enumerate(zip(grid.boxes, values, strict=True)))
    return RegionMapView("READY", grid.rows, grid.columns, regions, disagreement=disagreement)


def test_single_pdf_shows_the_region_map_with_how_to_read_it_and_the_disagreement(samples, tmp_path):
    data = samples.image_bytes(size=(640, 480))
    sentence = "Regions towards the left and towards the right of the image score very differently (90% and 5% AI)."
    entry = samples.entry(data=data, region_map=ready_map(640, 480, disagreement=sentence))
    pdf = render_pdf(samples.document((entry,)))
    text = " ".join(pdf_text(pdf).split())
    assert "Where in the image" in text
    assert "How to read the map: each box is one region of the image" in text
    assert "score very differently (90% and 5% AI)" in text
    assert "Pixel model's P(AI) per region" not in text  # the legend is part of the picture, not PDF text
    assert pdf_image_count(pdf) >= 3  # verdict thumbnail, map's thumbnail, the map


def test_single_pdf_says_why_there_is_no_region_map(samples, tmp_path):
    entry = samples.entry(region_map=RegionMapView("PENDING"))
    text = " ".join(pdf_text(render_pdf(samples.document((entry,)))).split())
    assert "No region map: it was still being made when this report was built" in text
    small = samples.entry(region_map=RegionMapView("UNAVAILABLE", reason="The image (100x90 pixels) is too small."))
    text = " ".join(pdf_text(render_pdf(samples.document((small,)))).split())
    assert "No region map: The image (100x90 pixels) is too small." in text


def test_single_pdf_names_an_invisible_watermark_among_the_provenance(samples, tmp_path):
    verdict = samples.ai_verdict()
    mark = 'Stable Diffusion 1.x invisible watermark ("StableDiffusionV1", 136 of 136 bits)'
    verdict = replace(verdict, provenance=replace(verdict.provenance, invisible_watermarks=(mark,)))
    text = " ".join(pdf_text(render_pdf(samples.document((samples.entry(verdict=verdict),)))).split())
    assert "Invisible watermark in the pixels" in text
    assert "136 of 136 bits" in text


def test_pdf_without_a_watermark_says_nothing_about_watermarks(samples, tmp_path):
    text = pdf_text(render_pdf(samples.document((samples.entry(),))))
    assert "watermark" not in text.lower()


def write_sample_pdf(path: Path) -> None:
    """A sample report to look at as a picture (pdftoppm -png)."""
    from tests.unit.reports.conftest import Samples

    data = Samples.image_bytes(size=(1024, 768))
    probs = [0.9 if (i % 8) < 4 else 0.1 for i in range(48)]
    entry = Samples.entry(data=data, region_map=ready_map(1024, 768, probs, "Regions towards the left and towards "
                          "the right of the image score very differently (90% and 10% AI): the image may be a "
                          "composite or partly edited, or the model may be unsure of it."))
    path.write_bytes(render_pdf(Samples.document((entry,))))
