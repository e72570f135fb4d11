"""scripts/eval-detector's logic: folders scored through the Detector, the pinned split checked by digest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pixelcheck.analysis.detector import DEFAULT_MODEL_DIR
from pixelcheck.analysis.detector.evaluation import (
    EvaluationError,
    expected_calibration_error,
    folder_items,
    main,
    pinned_items,
    roc_auc,
)
from pixelcheck.analysis.detector.evaluation_report import video_card
from tests.unit.detector.synthesized import jpeg_bytes, photo_like, png_bytes


def _folder(root: Path) -> Path:
    for index in range(3):
        (root / "ai" / "gen-a").mkdir(parents=True, exist_ok=True)
        (root / "ai" / "gen-a" / f"a{index}.png").write_bytes(png_bytes(photo_like(300, 260, seed=index)))
        (root / "real").mkdir(exist_ok=True)
        (root / "real" / f"r{index}.jpg").write_bytes(jpeg_bytes(photo_like(320, 240, seed=10 + index)))
    (root / "real" / "notes.txt").write_text("not an image")
    return root


def test_roc_auc_and_ece_match_hand_computed_values() -> None:
    labels = np.array([True, True, False, False])
    assert roc_auc(np.array([0.9, 0.4, 0.6, 0.1]), labels) == 0.75
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), labels) == 0.5
    assert roc_auc(np.array([0.3, 0.7]), np.array([True, True])) is None
    assert expected_calibration_error(np.array([0.9, 0.1]), np.array([True, False])) == pytest.approx(0.1)


def test_folder_groups_come_from_sub_folders(tmp_path: Path) -> None:
    items = folder_items(_folder(tmp_path))
    assert [(i.path.name, i.is_ai, i.group) for i in items][:2] == [
        ("a0.png", True, "ai/gen-a"),
        ("a1.png", True, "ai/gen-a"),
    ]
    assert {i.group for i in items if not i.is_ai} == {"real"} and len(items) == 6
    with pytest.raises(EvaluationError, match="no images"):
        folder_items(tmp_path / "empty")


def test_eval_prints_every_section_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "numbers.json"
    assert main([str(_folder(tmp_path / "set")), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    for text in ("== original: 6 images", "== jpeg_q95_no_metadata: 6 images", "per band:", "ai/gen-a", "ROC AUC"):
        assert text in printed
    numbers = json.loads(out.read_text())
    assert numbers["model"] == DEFAULT_MODEL_DIR.name and numbers["original"]["n"] == 6
    assert sum(b["n"] for b in numbers["original"]["per_band"].values()) == 6


def test_pinned_split_refuses_a_changed_pool(tmp_path: Path) -> None:
    pool = _folder(tmp_path / "pool")
    model = Path(shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "model"))
    import hashlib

    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (pool / "real").glob("*.jpg")}
    (model / "evaluation_split.json").write_text(json.dumps({"data_sha256": "x", "test": digests}))
    assert [i.path.name for i in pinned_items(pool, model, "test")] == sorted(digests)
    (pool / "real" / "r1.jpg").write_bytes(jpeg_bytes(photo_like(320, 240, seed=99)))
    with pytest.raises(EvaluationError, match="1 changed"):
        pinned_items(pool, model, "test")
    (pool / "real" / "r2.jpg").unlink()
    with pytest.raises(EvaluationError, match="1 files missing"):
        pinned_items(pool, model, "test")
    with pytest.raises(EvaluationError, match="no 'validation' split"):
        pinned_items(pool, model, "validation")
    assert main([str(pool), "--model", str(model), "--split", "test"]) == 2


def test_the_animation_variants_are_judged_as_animations_frame_by_frame() -> None:
    from pixelcheck.analysis.detector import load_detector
    from pixelcheck.analysis.detector.evaluation_variants import ANIMATION_VARIANTS

    detector = load_detector(DEFAULT_MODEL_DIR)
    still = jpeg_bytes(photo_like(320, 240, seed=31))
    for name, variant in ANIMATION_VARIANTS.items():
        verdict = detector.analyze(variant(still))
        assert verdict.timeline is not None and verdict.timeline.frames_in_file == 3, name
        assert verdict.timeline.frames_read >= 2, name  # one a second of its 1.5 s: the frames at 0 s and 1 s


def test_the_video_variants_are_clips_judged_frame_by_frame_as_the_service_judges_clips() -> None:
    from pixelcheck.analysis.detector import load_detector
    from pixelcheck.analysis.detector.evaluation_variants import VIDEO_VARIANTS

    detector = load_detector(DEFAULT_MODEL_DIR)
    still = jpeg_bytes(photo_like(321, 243, seed=32))
    assert set(VIDEO_VARIANTS) == {"h264_phone", "h264_social", "hevc_phone", "vp9_web"}
    for name, variant in VIDEO_VARIANTS.items():
        verdict = detector.analyze(variant(still))
        assert verdict.timeline is not None and verdict.timeline.media_kind == "VIDEO", name
        assert (verdict.image_facts.width, verdict.image_facts.height) == (312, 234), name  # even, minus the pan
        assert verdict.timeline.frames_in_file == 3 and verdict.timeline.frames_read == 2, name


def test_a_clip_is_the_picture_at_its_own_size_capped_at_1920_on_the_long_side() -> None:
    from pixelcheck.analysis.detector.evaluation_variants import clip_size

    assert clip_size(256, 256) == (248, 248, 1.0)
    width, height, scale = clip_size(4032, 3025)
    assert scale == pytest.approx(1920 / 4032) and (width, height) == (1912, 1432)


def test_video_evaluation_reports_each_variant_beside_the_stills_with_the_groups_it_hurts_most(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "numbers.json"
    assert main([str(_folder(tmp_path / "set")), "--videos", "--only", "h264_social", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "== h264_social: 6 images" in printed and "| h264_social | 6 |" in printed
    assert "| original | 6 |" in printed and "jpeg_q95" not in printed
    numbers = json.loads(out.read_text())
    assert isinstance(numbers["group_drops:h264_social"], list)


def test_group_drops_lists_the_groups_that_lose_most_images_first() -> None:
    from pixelcheck.analysis.detector.evaluation_report import group_drops

    original = {"per_group": {"small": {"n": 2, "accuracy": 1.0}, "large": {"n": 12, "accuracy": 0.8333},
                              "better": {"n": 4, "accuracy": 0.5}, "same": {"n": 5, "accuracy": 0.6}}}
    variant = {"per_group": {"small": {"n": 2, "accuracy": 0.5}, "large": {"n": 12, "accuracy": 0.4167},
                             "better": {"n": 4, "accuracy": 1.0}, "same": {"n": 5, "accuracy": 0.6}}}
    assert group_drops(original, variant) == [
        {"group": "large", "n": 12, "original": 0.8333, "variant": 0.4167, "images_lost": 5},
        {"group": "small", "n": 2, "original": 1.0, "variant": 0.5, "images_lost": 1},
    ]


def test_the_video_card_keeps_the_stills_and_each_clip_encoding_scored_with_their_descriptions() -> None:
    summary = {"n": 10, "n_ai": 4, "accuracy": 0.9, "roc_auc": 0.95, "ai_recall": 0.75, "real_accuracy": 1.0,
               "ece": 0.1, "per_group": {}}
    card = video_card({"original": summary, "h264_social": {**summary, "accuracy": 0.8}, "jpeg_q95": summary},
                      "m-1", "scripts/eval-detector DATA --split test --videos --card (2026-12-06)")
    assert list(card["variants"]) == ["original", "h264_social"] and card["model"] == "m-1"
    assert card["variants"]["h264_social"] == {
        "description": "H.264 at a social platform's bitrate (3.5 Mb/s at 1080p30)", "n": 10, "n_ai": 4,
        "accuracy": 0.8, "roc_auc": 0.95, "ai_recall": 0.75, "real_accuracy": 1.0}


def test_the_card_is_written_only_for_videos_on_the_test_split(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(_folder(tmp_path / "set")), "--card"]) == 2
    assert "--card needs --videos and --split test" in capsys.readouterr().err
