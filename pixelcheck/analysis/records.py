"""How a verdict is stored on an Analysis row and read back (JSON columns), and told to webhooks, in one place."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pixelcheck.analysis.detector.verdict import (
    Band,
    FrameVerdict,
    GeneratorFamily,
    ImageFacts,
    Label,
    Provenance,
    Segment,
    Signal,
    SignatureState,
    Stability,
    Timeline,
    Verdict,
)
from pixelcheck.analysis.models import Analysis


def verdict_columns(verdict: Verdict) -> dict[str, Any]:
    """The Analysis columns that hold a verdict, as values for an UPDATE."""
    provenance = asdict(verdict.provenance)
    provenance["c2pa_signature"] = verdict.provenance.c2pa_signature.value
    return {
        "label": verdict.label.value,
        "prob_ai": float(verdict.prob_ai),
        "confidence": float(verdict.confidence),
        "confidence_band": verdict.band.value,
        "model_version": verdict.model_version,
        "signals": [asdict(s) for s in verdict.signals],
        "provenance": _jsonable(provenance),
        "image_facts": asdict(verdict.image_facts) if verdict.image_facts else {},
        "explanation": verdict.summary,
        "generator_family": asdict(verdict.generator_family) if verdict.generator_family else None,
        "stability": asdict(verdict.stability) if verdict.stability else None,
        "timeline": asdict(verdict.timeline) if verdict.timeline else None,
    }


def store_verdict(row: Analysis, verdict: Verdict) -> None:
    """Copy a verdict onto an analysis row."""
    for name, value in verdict_columns(verdict).items():
        setattr(row, name, value)


def verdict_of(row: Analysis) -> Verdict | None:
    """The stored verdict of a SUCCEEDED analysis, else None."""
    if row.state != "SUCCEEDED" or row.label is None:
        return None
    p: dict[str, Any] = dict(row.provenance or {})
    provenance = Provenance(
        c2pa_present=bool(p.get("c2pa_present", False)),
        c2pa_claim_generator=str(p.get("c2pa_claim_generator", "")),
        c2pa_digital_source_type=str(p.get("c2pa_digital_source_type", "")),
        c2pa_signature=SignatureState(p.get("c2pa_signature", SignatureState.ABSENT.value)),
        c2pa_validation_errors=tuple(p.get("c2pa_validation_errors", ())),
        c2pa_signer=str(p.get("c2pa_signer", "")),
        generator_metadata=tuple(p.get("generator_metadata", ())),
        generator_name=str(p.get("generator_name", "")),
        camera_make=str(p.get("camera_make", "")),
        camera_model=str(p.get("camera_model", "")),
        software=str(p.get("software", "")),
        invisible_watermarks=tuple(p.get("invisible_watermarks", ())),
    )
    f = row.image_facts or {}
    facts = ImageFacts(format=f["format"], width=f["width"], height=f["height"], size_bytes=f["size_bytes"],
                       jpeg_quality=f.get("jpeg_quality"), has_exif=bool(f.get("has_exif"))) if f else None
    return Verdict(
        label=Label(row.label),
        prob_ai=float(row.prob_ai or 0.0),
        confidence=float(row.confidence or 0.0),
        band=Band(row.confidence_band or Band.LOW.value),
        model_version=row.model_version,
        signals=tuple(Signal(**s) for s in (row.signals or [])),
        provenance=provenance,
        image_facts=facts,
        summary=row.explanation,
        generator_family=GeneratorFamily(**row.generator_family) if row.generator_family else None,
        stability=Stability(**row.stability) if row.stability else None,
        timeline=timeline_of(row.timeline),
    )


def timeline_of(doc: dict[str, Any] | None) -> Timeline | None:
    """The stored Timeline of an animation's verdict (None for a still picture)."""
    if not doc:
        return None
    frames = tuple(FrameVerdict(**{**f, "label": Label(f["label"])}) for f in doc.get("frames", ()))
    segments = tuple(Segment(**s) for s in doc.get("segments", ()))
    return Timeline(**{**doc, "frames": frames, "segments": segments})


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def webhook_media(verdict: Verdict) -> dict[str, Any]:
    """What an analysis.succeeded webhook says of the media: its kind (STILL, ANIMATED or VIDEO) and, for an
    animation or clip, its timeline in short (the frames read with their times and P(AI), and the AI segments)."""
    timeline = verdict.timeline
    if timeline is None:
        return {"media_kind": "STILL"}
    return {"media_kind": timeline.media_kind, "timeline": {
        "duration_ms": timeline.duration_ms, "frames_in_file": timeline.frames_in_file,
        "frames_read": timeline.frames_read, "frames_skipped": timeline.frames_skipped,
        "has_audio": timeline.has_audio,
        "frames": [{"index": f.index, "time_ms": f.time_ms, "probability_ai": f.prob_ai, "label": f.label.value}
                   for f in timeline.frames],
        "ai_segments": [{"start_ms": s.start_ms, "end_ms": s.end_ms, "mean_probability_ai": s.mean_prob_ai}
                        for s in timeline.segments]}}
