"""Fusion rules: provenance decides when present and valid, weak hints only nudge, doubt shows as LOW."""

from __future__ import annotations

from pixelcheck.analysis.detector.content_credentials import CredentialFindings
from pixelcheck.analysis.detector.fusion import BandPolicy, fuse
from pixelcheck.analysis.detector.metadata_scan import MetadataFindings
from pixelcheck.analysis.detector.pixel_model import FamilyReading, PixelReading
from pixelcheck.analysis.detector.verdict import Band, Label, SignatureState

POLICY = BandPolicy(high=0.9, medium=0.7)
NOTHING = CredentialFindings()
NO_META = MetadataFindings()


def _pixel(prob_ai: float, agreement: float = 1.0) -> PixelReading:
    return PixelReading(prob_ai=prob_ai, crop_logits=(0.0,), agreement=agreement)


def _c2pa(
    source_type: str, state: SignatureState, *, credential_only: bool = False, errors: tuple[str, ...] = ()
) -> CredentialFindings:
    return CredentialFindings(
        present=True,
        state=state,
        signer="OpenAI",
        claim_generator="ChatGPT",
        source_type=source_type,
        errors=errors,
        credential_only=credential_only,
    )


def test_valid_c2pa_ai_statement_gives_ai_high_against_a_real_looking_pixel_reading() -> None:
    fused = fuse(_c2pa("trainedAlgorithmicMedia", SignatureState.VALID), NO_META, _pixel(0.05), 0.5, POLICY)
    assert (fused.label, fused.band) == (Label.AI, Band.HIGH) and fused.prob_ai > 0.99
    assert "signed by OpenAI" in fused.summary


def test_c2pa_ai_statement_with_expired_certificate_still_gives_ai_high() -> None:
    found = _c2pa(
        "trainedAlgorithmicMedia", SignatureState.INVALID, credential_only=True, errors=("signingCredential.expired",)
    )
    fused = fuse(found, NO_META, _pixel(0.3), 0.5, POLICY)
    assert (fused.label, fused.band) == (Label.AI, Band.HIGH)
    assert "expired" in fused.signals[0].explanation


def test_tampered_c2pa_weighs_little_and_says_so() -> None:
    found = _c2pa("trainedAlgorithmicMedia", SignatureState.INVALID, errors=("assertion.dataHash.mismatch",))
    fused = fuse(found, NO_META, _pixel(0.1), 0.5, POLICY)
    assert fused.label is Label.REAL
    credential = next(s for s in fused.signals if s.name == "content_credentials")
    assert "fail validation" in credential.explanation and credential.weight < 0.5


def test_valid_camera_capture_gives_real_high() -> None:
    fused = fuse(_c2pa("digitalCapture", SignatureState.VALID), NO_META, _pixel(0.7), 0.5, POLICY)
    assert (fused.label, fused.band) == (Label.REAL, Band.HIGH)


def test_generator_metadata_gives_ai_high() -> None:
    meta = MetadataFindings(generator_traces=("ComfyUI prompt/workflow in PNG text chunk",), generator_name="ComfyUI")
    fused = fuse(NOTHING, meta, _pixel(0.2), 0.5, POLICY)
    assert (fused.label, fused.band) == (Label.AI, Band.HIGH)


def test_camera_exif_only_nudges_and_is_explained_as_forgeable() -> None:
    meta = MetadataFindings(camera_make="Canon", camera_model="EOS R5", camera_capture_fields=("ISO", "f-number"))
    alone = fuse(NOTHING, NO_META, _pixel(0.6), 0.5, POLICY)
    nudged = fuse(NOTHING, meta, _pixel(0.6), 0.5, POLICY)
    assert nudged.prob_ai < alone.prob_ai and nudged.band is not Band.HIGH
    assert "easy to forge" in next(s for s in nudged.signals if s.name == "camera_metadata").explanation


def test_unsure_pixel_model_gives_low_band() -> None:
    fused = fuse(NOTHING, NO_META, _pixel(0.58), 0.5, POLICY)
    assert fused.band is Band.LOW and "cannot tell" in fused.summary


def test_confident_pixel_model_with_disagreeing_crops_is_not_high() -> None:
    assert fuse(NOTHING, NO_META, _pixel(0.97, agreement=0.6), 0.5, POLICY).band is Band.MEDIUM
    assert fuse(NOTHING, NO_META, _pixel(0.97), 0.5, POLICY).band is Band.HIGH


def test_graphics_like_picture_makes_the_pixel_model_count_little_and_band_low() -> None:
    reading = PixelReading(prob_ai=0.97, crop_logits=(3.0,), agreement=1.0, flat_share=0.9)
    fused = fuse(NOTHING, NO_META, reading, 0.5, POLICY)
    assert fused.band is Band.LOW and fused.prob_ai < 0.8
    assert "screenshot" in fused.signals[0].explanation


def test_no_evidence_at_all_is_low_and_not_an_accusation() -> None:
    fused = fuse(NOTHING, NO_META, None, 0.5, POLICY)
    assert (fused.label, fused.band, fused.prob_ai) == (Label.REAL, Band.LOW, 0.5)


def test_weights_are_shares_and_confidence_matches_label() -> None:
    meta = MetadataFindings(camera_make="Canon", camera_model="EOS R5")
    fused = fuse(NOTHING, meta, _pixel(0.8), 0.5, POLICY)
    assert abs(sum(s.weight for s in fused.signals) - 1.0) < 1e-3
    expected = fused.prob_ai if fused.label is Label.AI else 1 - fused.prob_ai
    assert abs(fused.confidence - expected) < 1e-9


def test_threshold_from_settings_moves_the_label() -> None:
    assert fuse(NOTHING, NO_META, _pixel(0.6), 0.5, POLICY).label is Label.AI
    assert fuse(NOTHING, NO_META, _pixel(0.6), 0.7, POLICY).label is Label.REAL


def _families(*ranked: tuple[str, float]) -> FamilyReading:
    return FamilyReading(tuple((family, f"{family} name", p) for family, p in ranked), unknown_below=0.5)


def _steady(prob_ai: float, *, copy: float | None = None, crops: tuple[float, ...] = (), families=None) -> PixelReading:
    return PixelReading(
        prob_ai=prob_ai,
        crop_logits=(1.0,),
        agreement=1.0,
        crop_probs=crops or (prob_ai,),
        families=families,
        social_copy_prob_ai=prob_ai if copy is None else copy,
    )


def test_a_verdict_that_a_messaging_app_copy_flips_is_low_and_says_why() -> None:
    fused = fuse(NOTHING, NO_META, _steady(0.97, copy=0.31), 0.5, POLICY)

    assert fused.label is Label.AI
    assert fused.band is Band.LOW
    assert fused.stability is not None and not fused.stability.stable and fused.stability.flips_when_shared
    assert "messaging apps" in fused.summary and "31% AI" in fused.summary


def test_crops_that_straddle_the_threshold_widely_make_the_band_low() -> None:
    fused = fuse(NOTHING, NO_META, _steady(0.95, crops=(0.99, 0.97, 0.15)), 0.5, POLICY)

    assert fused.band is Band.LOW
    assert fused.stability is not None and fused.stability.crops_disagree and not fused.stability.flips_when_shared
    assert "from 15% to 99% AI" in fused.summary


def test_a_stable_confident_reading_stays_high() -> None:
    fused = fuse(NOTHING, NO_META, _steady(0.97, copy=0.9, crops=(0.95, 0.99)), 0.5, POLICY)

    assert fused.band is Band.HIGH
    assert fused.stability is not None and fused.stability.stable and fused.stability.explanation == ""


def test_an_ai_verdict_names_the_likeliest_family_and_the_runner_up() -> None:
    reading = _steady(0.97, families=_families(("flux", 0.81), ("sdxl", 0.12), ("gan", 0.07)))
    family = fuse(NOTHING, NO_META, reading, 0.5, POLICY).generator_family

    assert family is not None and not family.unknown
    assert (family.family, family.probability, family.runner_up, family.runner_up_probability) == (
        "flux", 0.81, "sdxl", 0.12
    )
    assert "flux name (81%)" in family.explanation


def test_no_family_is_named_when_none_is_likely_enough() -> None:
    reading = _steady(0.97, families=_families(("flux", 0.41), ("sdxl", 0.38), ("gan", 0.21)))
    family = fuse(NOTHING, NO_META, reading, 0.5, POLICY).generator_family

    assert family is not None and family.unknown and family.family == "" and family.runner_up == "flux"
    assert "No generator family is likely enough" in family.explanation


def test_a_real_verdict_names_no_family() -> None:
    reading = _steady(0.03, families=_families(("flux", 0.9), ("sdxl", 0.1)))
    assert fuse(NOTHING, NO_META, reading, 0.5, POLICY).generator_family is None


def test_the_summary_calls_a_moving_file_by_its_kind_and_real_ones_camera_footage() -> None:
    real = fuse(NOTHING, NO_META, _pixel(0.02), 0.5, POLICY, subject="clip")
    assert real.summary.startswith("This clip is very likely real camera footage.")
    ai = fuse(NOTHING, NO_META, _pixel(0.99), 0.5, POLICY, subject="animation")
    assert ai.summary.startswith("This animation was very likely generated by AI.")
    unsure = fuse(NOTHING, NO_META, _pixel(0.45), 0.5, POLICY, subject="clip")
    assert unsure.summary.startswith("We cannot tell reliably whether this clip was made by AI; the evidence leans "
                                     "slightly towards real camera footage.")
    assert fuse(NOTHING, NO_META, _pixel(0.02), 0.5, POLICY).summary.startswith("This image is very likely a real")
