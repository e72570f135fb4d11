"""The versioned model artifact: a folder with the weights file and metadata.json describing them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REQUIRED_KEYS = ("name", "version", "weights_file", "weights_sha256", "threshold", "calibration", "bands")


class DetectorLoadError(Exception):
    """The model artifact is missing, incomplete or does not match its recorded digest."""


@dataclass(frozen=True)
class Artifact:
    directory: Path
    metadata: dict[str, Any]
    weights: bytes

    @property
    def full_name(self) -> str:
        """'<name>-<version>', the string every verdict carries."""
        return f"{self.metadata['name']}-{self.metadata['version']}"


def sha256_of(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def load_artifact(directory: Path) -> Artifact:
    """Read metadata.json and the weights it names, refusing anything that does not verify."""
    metadata_path = directory / "metadata.json"
    if not metadata_path.is_file():
        raise DetectorLoadError(f"model artifact not found: {metadata_path} does not exist")
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DetectorLoadError(f"model metadata {metadata_path} is unreadable: {error}") from error
    missing = [key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        raise DetectorLoadError(f"model metadata {metadata_path} lacks {', '.join(missing)}")
    weights_path = directory / str(metadata["weights_file"])
    if weights_path.name != str(metadata["weights_file"]) or not weights_path.is_file():
        raise DetectorLoadError(f"model weights {weights_path} are missing")
    weights = weights_path.read_bytes()
    actual = sha256_of(weights)
    if actual != metadata["weights_sha256"]:
        raise DetectorLoadError(
            f"model weights {weights_path} are corrupted: sha256 {actual} does not match "
            f"{metadata['weights_sha256']} recorded in metadata.json"
        )
    return Artifact(directory=directory, metadata=metadata, weights=weights)


VIDEO_CARD = "video_card.json"  # written by `scripts/eval-detector --videos --card`: measured, never trained


def load_video_card(directory: Path) -> dict[str, Any]:
    """The artifact's measured frame accuracy after video compression ({} when it was not measured)."""
    path = directory / VIDEO_CARD
    if not path.is_file():
        return {}
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DetectorLoadError(f"model video card {path} is unreadable: {error}") from error
    if not isinstance(card, dict) or not isinstance(card.get("variants"), dict):
        raise DetectorLoadError(f"model video card {path} lacks its variants")
    return card
