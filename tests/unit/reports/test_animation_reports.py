"""Reports of an animation: a CSV row per frame read after the clip's row, and a PDF timeline with the AI
segments and key frames. Reports of still pictures keep their layout."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import replace

from pixelcheck.analysis.detector.timeline import ai_segments, frame_verdict, timeline_summary
from pixelcheck.analysis.detector.verdict import Timeline
from pixelcheck.reports.csv_export import ANIMATION_COLUMNS, CSV_HEADER, render_csv
from pixelcheck.reports.document import EntryState
from pixelcheck.reports.pdf import render_pdf
from pixelcheck.reports.pdf_timeline import key_frames
from tests import images, videos
from tests.pdf_reading import pdf_image_count, pdf_text

PROBS = (0.1, 0.2, 0.91, 0.95, 0.15, 0.1)


def timeline() -> Timeline:
    frames = tuple(frame_verdict(i * 2, i * 1000, p, 0.5, i == 2) for i, p in enumerate(PROBS))
    segments = ai_segments(frames, 6000)
    return Timeline(duration_ms=6000, frames_in_file=12, frames_read=6, frames_skipped=1,
                    sampling_policy="One frame per 1 s of the timeline, always the first.", frames=frames,
                    segments=segments, summary=timeline_summary(frames, segments, 1))


def animated_entry(samples):  # type: ignore[no-untyped-def]
    verdict = replace(samples.real_verdict(), timeline=timeline())
    return samples.entry("img-anim", "loop.gif", verdict=verdict, content_type="image/gif",
                         data=images.animated("GIF", count=12, duration_ms=500))


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def test_csv_of_an_animation_has_its_clip_row_then_a_row_per_frame(samples) -> None:  # type: ignore[no-untyped-def]
    data = render_csv(samples.document((samples.entry(), animated_entry(samples))))
    header = next(csv.reader(io.StringIO(data.decode("utf-8"))))
    assert tuple(header) == CSV_HEADER + ANIMATION_COLUMNS
    got = rows(data)
    assert [r["media_kind"] for r in got] == ["STILL", "ANIMATED"] + ["FRAME"] * 6
    assert got[1]["ai_segments_ms"] == "2000-4000" and got[1]["label"] == "REAL"
    frames = got[2:]
    assert [(r["frame_index"], r["frame_time_ms"], r["prob_ai"], r["label"]) for r in frames][2] == (
        "4", "2000", "0.9100", "AI")
    assert [r["scene_cut"] for r in frames] == ["no", "no", "yes", "no", "no", "no"]
    assert all(r["image_id"] == "img-anim" and r["filename"] == "loop.gif" for r in frames)


def test_csv_of_stills_only_keeps_exactly_the_documented_header(samples) -> None:  # type: ignore[no-untyped-def]
    data = render_csv(samples.document((samples.entry(),)))
    assert next(csv.reader(io.StringIO(data.decode("utf-8")))) == list(CSV_HEADER)


def test_pdf_of_an_animation_shows_its_timeline_and_key_frames(samples) -> None:  # type: ignore[no-untyped-def]
    pdf = render_pdf(samples.document((animated_entry(samples),)))
    text = pdf_text(pdf)
    assert "Frame by frame" in text and "Frames 0:02–0:04 read as generated; the rest as camera footage." in text
    assert "6 of 12 frames read over 0:06; 1 could not be decoded and were skipped" in text
    assert "Key frames" in text and "0:02 · frame 4 · 91% AI" in text
    still = render_pdf(samples.document((samples.entry(),)))
    # The first key frame is the preview's picture at the same size: the PDF holds that image once.
    assert pdf_image_count(pdf) == pdf_image_count(still) + len(key_frames(timeline())) - 1
    assert "Frame by frame" not in pdf_text(still)


def test_key_frames_are_the_first_last_most_ai_and_segment_starts() -> None:
    chosen = key_frames(timeline())
    assert [f.time_ms for f in chosen] == [0, 2000, 3000, 5000]


def clip_entry(samples, **changes):  # type: ignore[no-untyped-def]
    verdict = replace(samples.real_verdict(), summary="", timeline=replace(timeline(), media_kind="VIDEO"))
    fields = {"verdict": verdict, "content_type": "video/mp4", "data": videos.clip(seconds=1.2), **changes}
    return samples.entry("img-clip", "holiday.mp4", **fields)


def test_pdf_of_a_clip_speaks_of_the_clip_and_of_camera_footage(samples) -> None:  # type: ignore[no-untyped-def]
    text = " ".join(pdf_text(render_pdf(samples.document((clip_entry(samples),), title=""))).split())
    assert "Clip analysis report" in text and "Likely real camera footage" in text
    assert "The detector judges this clip likely real camera footage" in text
    assert "About the clip" in text and "Where the clip came from" in text
    assert "points to real camera footage (AI score 22%)" in text
    assert "Likely a real photograph" not in text and "points to a real photograph" not in text


def test_a_pending_clip_is_called_a_clip_before_its_verdict(samples) -> None:  # type: ignore[no-untyped-def]
    entry = clip_entry(samples, state=EntryState.QUEUED, verdict=None)
    text = " ".join(pdf_text(render_pdf(samples.document((entry,)))).split())
    assert "This clip had no verdict yet when the report was made." in text


def test_batch_pdf_rows_of_moving_pictures_carry_their_timeline(samples) -> None:  # type: ignore[no-untyped-def]
    entries = (samples.entry(), animated_entry(samples), clip_entry(samples))
    text = " ".join(pdf_text(render_pdf(samples.document(entries))).split())
    assert text.count("Frames 0:02–0:04 read as generated; the rest as camera footage.") == 2
    assert text.count("Likely real camera footage") == 2 and "· 0:06" in text
    assert "Likely real: a photograph or camera footage 2" in text
    still_only = " ".join(pdf_text(render_pdf(samples.document((samples.entry(), samples.entry("img-2"))))).split())
    assert "camera footage" not in still_only


def test_a_clips_preview_is_its_first_frame_not_an_unavailable_box(samples) -> None:  # type: ignore[no-untyped-def]
    with_clip = render_pdf(samples.document((samples.entry(), clip_entry(samples))))
    without = render_pdf(samples.document((samples.entry(),)))
    assert pdf_image_count(with_clip) == pdf_image_count(without) + 1
    assert "Preview unavailable" not in " ".join(pdf_text(with_clip).split())


def test_a_clip_drawn_from_its_local_copy_looks_as_one_drawn_from_its_bytes(samples, tmp_path) -> None:  # type: ignore[no-untyped-def]
    clip = videos.clip(seconds=1.2)
    (tmp_path / "clip.mp4").write_bytes(clip)
    same = {"sha256": hashlib.sha256(clip).hexdigest(), "size_bytes": len(clip)}
    from_bytes = render_pdf(samples.document((clip_entry(samples, data=clip, **same),)))
    from_file = render_pdf(samples.document((clip_entry(samples, data=b"", clip_path=str(tmp_path / "clip.mp4"),
                                                        **same),)))
    text = " ".join(pdf_text(from_file).split())
    assert "Key frames" in text and "Preview unavailable" not in text
    assert text == " ".join(pdf_text(from_bytes).split())
    assert pdf_image_count(from_file) == pdf_image_count(from_bytes)
