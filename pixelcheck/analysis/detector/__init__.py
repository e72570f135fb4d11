"""The detector: provenance first, a trained pixel model, fused into an explained, versioned verdict."""

from pixelcheck.analysis.detector.artifact import DetectorLoadError
from pixelcheck.analysis.detector.detector import DEFAULT_MODEL_DIR, Detector, load_detector
from pixelcheck.analysis.detector.image_facts import ImageUnreadable
from pixelcheck.analysis.detector.verdict import (
    Band,
    ImageFacts,
    Label,
    ModelInfo,
    Provenance,
    Signal,
    SignatureState,
    Stage,
    Verdict,
)

__all__ = [
    "DEFAULT_MODEL_DIR",
    "Band",
    "Detector",
    "DetectorLoadError",
    "ImageFacts",
    "ImageUnreadable",
    "Label",
    "ModelInfo",
    "Provenance",
    "Signal",
    "SignatureState",
    "Stage",
    "Verdict",
    "load_detector",
]
