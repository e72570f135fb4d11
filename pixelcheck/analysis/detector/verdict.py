"""What the detector returns: a verdict with its evidence, as plain domain values (no grpc, no ORM)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Label(StrEnum):
    AI = "AI"
    REAL = "REAL"


class Band(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


class Stage(StrEnum):
    """Analysis stages in the order a worker passes through them."""

    QUEUED = "QUEUED"
    DECODING = "DECODING"
    PROVENANCE = "PROVENANCE"
    PIXEL_MODEL = "PIXEL_MODEL"
    FUSION = "FUSION"
    SAVING = "SAVING"
    DONE = "DONE"


class SignatureState(StrEnum):
    """Validation state of a C2PA manifest, as far as it can be checked offline."""

    ABSENT = "ABSENT"  # no manifest in the file
    VALID = "VALID"  # structurally valid and signature verifies (signer may still be untrusted)
    INVALID = "INVALID"  # tampered, hash mismatch, bad or expired signature
    UNREADABLE = "UNREADABLE"  # bytes present but the manifest could not be parsed


@dataclass(frozen=True)
class Signal:
    """One piece of evidence: score is P(AI) in 0..1 as this signal sees it, weight its share in fusion."""

    name: str
    score: float
    weight: float
    explanation: str


@dataclass(frozen=True)
class Provenance:
    c2pa_present: bool = False
    c2pa_claim_generator: str = ""
    c2pa_digital_source_type: str = ""  # e.g. trainedAlgorithmicMedia, digitalCapture ("" when none)
    c2pa_signature: SignatureState = SignatureState.ABSENT
    c2pa_validation_errors: tuple[str, ...] = ()
    c2pa_signer: str = ""
    generator_metadata: tuple[str, ...] = ()  # e.g. ("AUTOMATIC1111 parameters in PNG text chunk",)
    generator_name: str = ""  # best guess of the generator named by metadata, "" when none
    camera_make: str = ""
    camera_model: str = ""
    software: str = ""
    invisible_watermarks: tuple[str, ...] = ()  # e.g. ('Stable Diffusion 1.x invisible watermark (...)',)


@dataclass(frozen=True)
class ImageFacts:
    format: str  # JPEG, PNG, WEBP, AVIF or HEIF
    width: int
    height: int
    size_bytes: int
    jpeg_quality: int | None = None  # estimated from quantisation tables, JPEG only
    has_exif: bool = False


@dataclass(frozen=True)
class Verdict:
    label: Label
    prob_ai: float
    confidence: float  # of the chosen label: prob_ai for AI, 1 - prob_ai for REAL
    band: Band
    model_version: str
    signals: tuple[Signal, ...] = ()
    provenance: Provenance = field(default_factory=Provenance)
    image_facts: ImageFacts | None = None
    summary: str = ""  # one or two plain-language sentences explaining the verdict


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    weights_sha256: str
    threshold: float
    input_description: str
    training_data: str
    metrics: dict[str, float]
    licence_note: str = ""
