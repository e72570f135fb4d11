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
    format: str  # JPEG, PNG, WEBP, AVIF, HEIF, BMP or TIFF
    width: int
    height: int
    size_bytes: int
    jpeg_quality: int | None = None  # estimated from quantisation tables, JPEG only
    has_exif: bool = False


@dataclass(frozen=True)
class GeneratorFamily:
    """The generator family the pixel model finds most likely for an AI verdict, and the runner-up."""

    family: str  # family id, e.g. "gemini-imagen"; "" when unknown
    name: str  # display name, e.g. "Gemini / Imagen (Google)"; "" when unknown
    probability: float  # calibrated probability of the top family, 0-1
    runner_up: str
    runner_up_name: str
    runner_up_probability: float
    unknown: bool  # True when no family is likely enough to name
    explanation: str


@dataclass(frozen=True)
class Stability:
    """Whether the pixel verdict survives sharing and whether the parts of the picture agree."""

    stable: bool
    flips_when_shared: bool  # the messaging-app copy (long side 1080, JPEG q80) gets the other label
    crops_disagree: bool  # the crops straddle the threshold widely
    social_copy_prob_ai: float | None  # P(AI) of the messaging-app copy
    crop_prob_min: float
    crop_prob_max: float
    explanation: str  # a plain sentence when not stable, else ""


@dataclass(frozen=True)
class FrameVerdict:
    """The pixel model's reading of one sampled frame of an animation."""

    index: int  # the frame's number in the file, from 0
    time_ms: int  # when it appears on the timeline
    prob_ai: float  # calibrated P(AI) of the frame alone
    label: Label
    scene_cut: bool = False  # sampled because the picture changed strongly


@dataclass(frozen=True)
class Segment:
    """A stretch of the timeline whose sampled frames read as generated: [start_ms, end_ms)."""

    start_ms: int
    end_ms: int
    frame_count: int
    mean_prob_ai: float


@dataclass(frozen=True)
class Timeline:
    """How an animation or a video clip was read frame by frame and what each part of it looks like."""

    duration_ms: int
    frames_in_file: int
    frames_read: int  # frames the pixel model scored (len(frames))
    frames_skipped: int  # frames that could not be decoded (corrupt or cut off)
    sampling_policy: str  # the policy in words
    frames: tuple[FrameVerdict, ...] = ()
    segments: tuple[Segment, ...] = ()  # the stretches that read AI
    summary: str = ""  # e.g. "Frames 0:04-0:11 read as generated; the rest as camera footage."
    media_kind: str = "ANIMATED"  # ANIMATED (GIF, WebP, PNG) or VIDEO (MP4, MOV, WebM)
    has_audio: bool = False  # a clip with a sound track: the sound is not analysed (the summary says so)


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
    generator_family: GeneratorFamily | None = None  # AI verdicts of a model with a family head only
    stability: Stability | None = None  # when the pixel model read the picture
    timeline: Timeline | None = None  # animations only: the frame-by-frame reading


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
    # {"false_positive_rate_by_real_kind": {kind: {"description", "n", "wrongly_called_ai"}},
    #  "catch_rate_by_family": {family: {"name", "n", "caught"}}} on the pinned test split
    model_card: dict[str, dict[str, dict[str, object]]] = field(default_factory=dict)
    moving_pictures: str = ""  # how an animation's or a clip's verdict is made from its frames, in words
    # {"measured_with", "variants": {variant: {"description", "n", "n_ai", "accuracy", "roc_auc", "ai_recall",
    #  "real_accuracy"}}}: frame accuracy after video compression (the artifact's video_card.json)
    video_card: dict[str, object] = field(default_factory=dict)
