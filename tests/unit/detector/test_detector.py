"""The Detector end to end: stages, verdict contents, provenance fixtures and the model on real images."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pixelcheck.analysis.detector import (
    DEFAULT_MODEL_DIR,
    Band,
    Detector,
    ImageUnreadable,
    Label,
    SignatureState,
    Stage,
    load_detector,
)
from pixelcheck.analysis.detector.artifact import VIDEO_CARD, DetectorLoadError
from tests.unit.detector.conftest import shared_root
from tests.unit.detector.synthesized import jpeg_bytes, photo_like, png_bytes

A1111 = "a duck\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512"


@pytest.fixture(scope="module")
def detector() -> Detector:
    return load_detector(DEFAULT_MODEL_DIR)


def test_stages_are_announced_in_order_and_verdict_is_complete(detector: Detector) -> None:
    stages: list[Stage] = []
    data = jpeg_bytes(photo_like(640, 480), quality=87)
    verdict = detector.analyze(data, on_stage=stages.append)
    assert stages == [Stage.DECODING, Stage.PROVENANCE, Stage.PIXEL_MODEL, Stage.FUSION]
    assert verdict.model_version == detector.model_version == f"{detector.info.name}-{detector.info.version}"
    assert verdict.image_facts is not None and verdict.image_facts.jpeg_quality == 87
    assert (verdict.image_facts.width, verdict.image_facts.height, verdict.image_facts.size_bytes) == (
        640,
        480,
        len(data),
    )
    assert 0.0 <= verdict.prob_ai <= 1.0 and verdict.confidence >= 0.5 and verdict.summary
    assert [s.name for s in verdict.signals] == ["pixel_model"] and verdict.signals[0].weight == 1.0


def test_generator_metadata_png_is_ai_high(detector: Detector) -> None:
    verdict = detector.analyze(png_bytes(photo_like(300, 300), {"parameters": A1111}))
    assert (verdict.label, verdict.band) == (Label.AI, Band.HIGH)
    assert verdict.provenance.generator_name == "Stable Diffusion"


def test_screenshot_like_graphic_is_low(detector: Detector) -> None:
    from PIL import Image, ImageDraw

    canvas = Image.new("RGB", (600, 400), "white")
    draw = ImageDraw.Draw(canvas)
    for row in range(0, 400, 24):
        draw.text((20, row), "Content Credentials  issued by OpenAI  2025-04-01", fill="black")
    verdict = detector.analyze(png_bytes(canvas))
    assert verdict.band is Band.LOW and "screenshot" in verdict.signals[0].explanation


def test_one_pixel_image_is_low_without_crashing(detector: Detector) -> None:
    verdict = detector.analyze(png_bytes(photo_like(1, 1)))
    assert verdict.band is Band.LOW


@pytest.mark.parametrize("data", [b"", b"GIF89a not really", b"\xff\xd8\xff\xe0" + b"\0" * 20])
def test_undecodable_bytes_raise_image_unreadable(detector: Detector, data: bytes) -> None:
    with pytest.raises(ImageUnreadable):
        detector.analyze(data)


def test_concurrent_analyses_agree(detector: Detector) -> None:
    images = [jpeg_bytes(photo_like(400, 300, seed=s)) for s in range(4)]
    expected = [detector.analyze(d).prob_ai for d in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(lambda d: detector.analyze(d).prob_ai, images * 2)) == expected * 2


PROVENANCE = "data/provenance"
AI_BY_PROVENANCE = [
    "ai-image-dataset/metadata/cat-yawn-dalle.png",
    "ai-image-dataset/metadata/cat-yawn-midjourney.png",
    "ai-image-dataset/metadata/cat-yawn-sdxl.png",
    "c2pa-python/C.jpg",
    "c2pa-python/files-for-reading-tests/CACAE-uri-CA.jpg",
    "sd-parsers/bad_images/text_after_idat.png",
    "sd-parsers/parsers/AUTOMATIC1111/automatic1111_cropped.jpg",
    "sd-parsers/parsers/AUTOMATIC1111/automatic1111_cropped.png",
    "sd-parsers/parsers/AUTOMATIC1111/automatic1111_stealth.png",
    "sd-parsers/parsers/ComfyUI/img2img_cropped.png",
    "sd-parsers/parsers/ComfyUI/night_evening_day_morning_cropped.png",
    "sd-parsers/parsers/ComfyUI/noisy_latents_3_subjects_cropped.png",
    "sd-parsers/parsers/ComfyUI/unclip_2pass_cropped.png",
    "sd-parsers/parsers/Fooocus/fooocus1_cropped.png",
    "sd-parsers/parsers/InvokeAI/invokeai_dream1.png",
    "sd-parsers/parsers/InvokeAI/invokeai_imeta1.png",
    "sd-parsers/parsers/InvokeAI/invokeai_sdmeta1.png",
    "sd-parsers/parsers/NovelAI/novelai1_cropped.png",
]


@pytest.mark.parametrize("name", AI_BY_PROVENANCE)
def test_ai_provenance_fixture_is_ai_high(detector: Detector, shared_file: Callable[[str], Path], name: str) -> None:
    verdict = detector.analyze(shared_file(f"{PROVENANCE}/{name}").read_bytes())
    assert (verdict.label, verdict.band) == (Label.AI, Band.HIGH), verdict.summary


def test_c2pa_ingredient_ai_statement_gives_ai_high(detector: Detector, shared_file: Callable[[str], Path]) -> None:
    verdict = detector.analyze(shared_file(f"{PROVENANCE}/ai-image-dataset/metadata/cat-yawn-dalle.png").read_bytes())
    assert verdict.provenance.c2pa_digital_source_type == "trainedAlgorithmicMedia"
    assert verdict.provenance.c2pa_signature is SignatureState.INVALID
    assert "signingCredential.expired" in verdict.provenance.c2pa_validation_errors
    assert "OpenAI" in verdict.summary


def test_valid_camera_capture_is_real(detector: Detector, shared_file: Callable[[str], Path]) -> None:
    verdict = detector.analyze(shared_file(f"{PROVENANCE}/c2pa-python/C_with_CAWG_data.jpg").read_bytes())
    assert (verdict.label, verdict.band) == (Label.REAL, Band.HIGH)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("c2pa-public-testfiles/adobe-20220124-E-sig-CA.jpg", "claimSignature.mismatch"),
        ("c2pa-public-testfiles/adobe-20220124-E-dat-CA.jpg", "assertion.dataHash.mismatch"),
        ("c2pa-public-testfiles/nikon-20221019-building.jpeg", "signingCredential.expired"),
    ],
)
def test_tampered_or_expired_credentials_are_reported(
    detector: Detector, shared_file: Callable[[str], Path], name: str, error: str
) -> None:
    verdict = detector.analyze(shared_file(f"{PROVENANCE}/{name}").read_bytes())
    assert verdict.provenance.c2pa_signature is SignatureState.INVALID
    assert error in verdict.provenance.c2pa_validation_errors


def test_empty_fixture_file_is_unreadable_not_a_crash(detector: Detector, shared_file: Callable[[str], Path]) -> None:
    with pytest.raises(ImageUnreadable):
        detector.analyze(shared_file(f"{PROVENANCE}/sd-parsers/bad_images/empty_file.png").read_bytes())


def test_model_gets_most_held_out_crops_right(detector: Detector, shared_file: Callable[[str], Path]) -> None:
    root = shared_file("data/detector")
    pinned = json.loads((DEFAULT_MODEL_DIR / "evaluation_split.json").read_text())
    metadata = json.loads((DEFAULT_MODEL_DIR / "metadata.json").read_text())
    assert pinned["data_sha256"] == metadata["training_data"]["sha256"]
    chosen = sorted(pinned["test"])[::25]  # the artifact's own held-out files: never trained on, whatever the pool
    correct = []
    for name in chosen:
        path = next(root.glob(f"*/{name}"))
        assert hashlib.sha256(path.read_bytes()).hexdigest() == pinned["test"][name], f"{name} changed since training"
        correct.append((detector.analyze(path.read_bytes()).label is Label.AI) == (path.parent.name == "ai"))
    assert len(chosen) >= 40 and sum(correct) / len(correct) >= 0.8


def test_a_region_is_scored_on_its_centred_crop_alone(detector: Detector) -> None:
    from pixelcheck.analysis.detector.image_facts import decode_rgb, open_image
    from pixelcheck.analysis.detector.pixel_model import region_crop

    rgb = decode_rgb(open_image(jpeg_bytes(photo_like(640, 480, seed=3))))
    pixel = detector.pixel_model  # the region map calls the pixel model directly
    boxes = [(0, 0, 640, 480), (100, 50, 400, 350), (-20, -20, 300, 200), (600, 400, 640, 480), (10, 10, 50, 50)]
    scores = pixel.score_boxes(rgb, boxes, 128)
    assert len(scores) == len(boxes) and all(0.0 <= p <= 1.0 for p in scores)
    for (left, top, right, bottom), score in zip(boxes[:3], scores[:3], strict=True):
        read = region_crop((max(0, left), max(0, top), min(640, right), min(480, bottom)), 128)
        assert read is not None
        x, y, side = read
        alone = rgb.crop((x, y, x + side, y + side))  # the crop as a picture of its own: nothing else counts
        assert pixel.score_boxes(alone, [(0, 0, side, side)], 128)[0] == pytest.approx(score, abs=1e-5)
    assert len(set(scores[:3])) == 3
    assert scores[3] == 0.5 and scores[4] == 0.5  # 40 px regions: too small to judge, no opinion
    assert pixel.score_boxes(rgb, [], 128) == []


def test_regions_are_read_by_the_region_head_with_its_own_calibration_and_by_the_verdicts_head_without_one(
        detector: Detector) -> None:
    import numpy as np
    import onnxruntime

    from pixelcheck.analysis.detector.pixel_model import PixelModel, sigmoid

    meta = json.loads((DEFAULT_MODEL_DIR / "metadata.json").read_text())
    region = meta["regions"]["calibration"]
    crop = np.asarray(photo_like(128, 128, seed=5))
    session = onnxruntime.InferenceSession((DEFAULT_MODEL_DIR / "model.onnx").read_bytes(),
                                           providers=["CPUExecutionProvider"])
    outputs = dict(zip([o.name for o in session.get_outputs()],
                       session.run(None, {"pixels": crop[None].transpose(0, 3, 1, 2).astype(np.float32)}),
                       strict=True))
    picture = photo_like(128, 128, seed=5)
    expected = sigmoid(region["slope"] * float(outputs["region_logit"][0]) + region["intercept"])
    assert detector.pixel_model.score_boxes(picture, [(0, 0, 128, 128)], 128)[0] == pytest.approx(expected, abs=1e-5)
    without = PixelModel((DEFAULT_MODEL_DIR / "model.onnx").read_bytes(), meta["calibration"], 4)
    whole = without.run(picture)  # a 128 px picture is read through one crop of itself
    assert whole is not None
    assert without.score_boxes(picture, [(0, 0, 128, 128)], 128)[0] == pytest.approx(whole.prob_ai, abs=1e-5)


def test_shared_root_is_configurable(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIXELCHECK_SHARED_DIR", str(tmp_path))
    assert shared_root() == tmp_path


def test_held_out_ai_crops_name_a_family_and_real_ones_none(
    detector: Detector, shared_file: Callable[[str], Path]
) -> None:
    root = shared_file("data/detector")
    pinned = json.loads((DEFAULT_MODEL_DIR / "evaluation_split.json").read_text())
    families = json.loads((DEFAULT_MODEL_DIR / "metadata.json").read_text())["families"]["ids"]
    verdicts = [(path, detector.analyze(path.read_bytes())) for path in
                (next(root.glob(f"*/{name}")) for name in sorted(pinned["test"])[::40])]
    ai_verdicts = [v for _, v in verdicts if v.label is Label.AI]
    assert ai_verdicts and all(v.generator_family is not None for v in ai_verdicts)
    for verdict in ai_verdicts:
        family = verdict.generator_family
        assert family is not None and family.explanation
        assert (family.family in families) != family.unknown and family.runner_up in families
        assert 0.0 <= family.runner_up_probability <= family.probability <= 1.0 or family.unknown
    assert all(v.generator_family is None for _, v in verdicts if v.label is Label.REAL)
    assert all(v.stability is not None for _, v in verdicts)


def test_stability_reflects_the_messaging_app_copy_and_unstable_verdicts_are_low(detector: Detector) -> None:
    from pixelcheck.analysis.detector.image_facts import decode_rgb, open_image
    from pixelcheck.analysis.detector.recompression import social_copy

    for seed in range(6):
        data = png_bytes(photo_like(1400, 900, seed=seed))
        verdict = detector.analyze(data)
        rgb = decode_rgb(open_image(data))
        reading = detector.pixel_model.run(rgb)
        copy = detector.pixel_model.run(social_copy(rgb))
        assert reading is not None and copy is not None and verdict.stability is not None
        assert verdict.stability.social_copy_prob_ai == pytest.approx(copy.prob_ai, abs=1e-4)
        assert verdict.stability.flips_when_shared == ((copy.prob_ai >= 0.5) != (reading.prob_ai >= 0.5))
        if verdict.stability.stable:
            assert verdict.stability.explanation == ""
        else:
            assert verdict.band is Band.LOW and verdict.stability.explanation in verdict.summary


def test_model_info_says_how_moving_pictures_are_judged_and_carries_the_measured_video_card(
        tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, copy)
    (copy / VIDEO_CARD).unlink(missing_ok=True)
    info = load_detector(copy).info
    assert info.video_card == {} and "trimmed mean of the frames' calibrated logits" in info.moving_pictures
    assert "no clip from a video generator was measured" in info.moving_pictures
    card = {"model": "x", "measured_with": "scripts/eval-detector ...", "variants": {"original": {"n": 1}}}
    (copy / VIDEO_CARD).write_text(json.dumps(card))
    assert load_detector(copy).info.video_card == card
    (copy / VIDEO_CARD).write_text("{not json")
    with pytest.raises(DetectorLoadError, match="video card"):
        load_detector(copy)


def test_model_info_carries_the_model_card(detector: Detector) -> None:
    card = detector.info.model_card
    kinds = card["false_positive_rate_by_real_kind"]
    assert {"professional", "text", "phone", "camera-originals"} <= set(kinds)
    assert all(0.0 <= float(v["wrongly_called_ai"]) <= 1.0 and int(v["n"]) > 0 for v in kinds.values())
    assert {"gpt-image", "gemini-imagen", "flux"} <= set(card["catch_rate_by_family"])
