"""The versioned artifact: loaded by digest, refused when missing or corrupted, reported in ModelInfo."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pixelcheck.analysis.detector import DEFAULT_MODEL_DIR, DetectorLoadError, load_detector


def test_shipped_artifact_loads_and_reports_itself() -> None:
    detector = load_detector(DEFAULT_MODEL_DIR)
    metadata = json.loads((DEFAULT_MODEL_DIR / "metadata.json").read_text())
    info = detector.info
    assert (info.name, info.version, info.weights_sha256) == (
        metadata["name"],
        metadata["version"],
        metadata["weights_sha256"],
    )
    assert info.threshold == metadata["threshold"] and "research" in info.licence_note.lower()
    assert info.metrics["test_accuracy"] > 0.5 and DEFAULT_MODEL_DIR.name == detector.model_version


def test_threshold_override_is_reported() -> None:
    assert load_detector(DEFAULT_MODEL_DIR, threshold=0.7).info.threshold == 0.7


def test_corrupted_weights_are_refused(tmp_path: Path) -> None:
    copy = Path(shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "model"))
    weights = copy / "model.onnx"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(DetectorLoadError, match="corrupted"):
        load_detector(copy)


def test_missing_artifact_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DetectorLoadError, match="not found"):
        load_detector(tmp_path / "nowhere")


def test_missing_weights_are_refused(tmp_path: Path) -> None:
    copy = Path(shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "model"))
    (copy / "model.onnx").unlink()
    with pytest.raises(DetectorLoadError, match="missing"):
        load_detector(copy)


def test_metadata_without_digest_is_refused(tmp_path: Path) -> None:
    copy = Path(shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "model"))
    metadata = json.loads((copy / "metadata.json").read_text())
    del metadata["weights_sha256"]
    (copy / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(DetectorLoadError, match="weights_sha256"):
        load_detector(copy)
