import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from pixelcheck.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RegionMapState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REGION_MAP_STATE_UNSPECIFIED: _ClassVar[RegionMapState]
    REGION_MAP_STATE_PENDING: _ClassVar[RegionMapState]
    REGION_MAP_STATE_READY: _ClassVar[RegionMapState]
    REGION_MAP_STATE_UNAVAILABLE: _ClassVar[RegionMapState]
    REGION_MAP_STATE_FAILED: _ClassVar[RegionMapState]

class C2paSignature(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    C2PA_SIGNATURE_UNSPECIFIED: _ClassVar[C2paSignature]
    C2PA_SIGNATURE_ABSENT: _ClassVar[C2paSignature]
    C2PA_SIGNATURE_VALID: _ClassVar[C2paSignature]
    C2PA_SIGNATURE_INVALID: _ClassVar[C2paSignature]
    C2PA_SIGNATURE_UNREADABLE: _ClassVar[C2paSignature]

class MediaKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEDIA_KIND_UNSPECIFIED: _ClassVar[MediaKind]
    MEDIA_KIND_STILL: _ClassVar[MediaKind]
    MEDIA_KIND_ANIMATED: _ClassVar[MediaKind]
    MEDIA_KIND_VIDEO: _ClassVar[MediaKind]
REGION_MAP_STATE_UNSPECIFIED: RegionMapState
REGION_MAP_STATE_PENDING: RegionMapState
REGION_MAP_STATE_READY: RegionMapState
REGION_MAP_STATE_UNAVAILABLE: RegionMapState
REGION_MAP_STATE_FAILED: RegionMapState
C2PA_SIGNATURE_UNSPECIFIED: C2paSignature
C2PA_SIGNATURE_ABSENT: C2paSignature
C2PA_SIGNATURE_VALID: C2paSignature
C2PA_SIGNATURE_INVALID: C2paSignature
C2PA_SIGNATURE_UNREADABLE: C2paSignature
MEDIA_KIND_UNSPECIFIED: MediaKind
MEDIA_KIND_STILL: MediaKind
MEDIA_KIND_ANIMATED: MediaKind
MEDIA_KIND_VIDEO: MediaKind

class Signal(_message.Message):
    __slots__ = ("name", "score", "weight", "explanation")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    score: float
    weight: float
    explanation: str
    def __init__(self, name: _Optional[str] = ..., score: _Optional[float] = ..., weight: _Optional[float] = ..., explanation: _Optional[str] = ...) -> None: ...

class Provenance(_message.Message):
    __slots__ = ("c2pa_present", "c2pa_claim_generator", "c2pa_digital_source_type", "c2pa_signature", "c2pa_validation_errors", "c2pa_signer", "generator_metadata", "generator_name", "camera_make", "camera_model", "software", "invisible_watermarks")
    C2PA_PRESENT_FIELD_NUMBER: _ClassVar[int]
    C2PA_CLAIM_GENERATOR_FIELD_NUMBER: _ClassVar[int]
    C2PA_DIGITAL_SOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    C2PA_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    C2PA_VALIDATION_ERRORS_FIELD_NUMBER: _ClassVar[int]
    C2PA_SIGNER_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_METADATA_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_NAME_FIELD_NUMBER: _ClassVar[int]
    CAMERA_MAKE_FIELD_NUMBER: _ClassVar[int]
    CAMERA_MODEL_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_FIELD_NUMBER: _ClassVar[int]
    INVISIBLE_WATERMARKS_FIELD_NUMBER: _ClassVar[int]
    c2pa_present: bool
    c2pa_claim_generator: str
    c2pa_digital_source_type: str
    c2pa_signature: C2paSignature
    c2pa_validation_errors: _containers.RepeatedScalarFieldContainer[str]
    c2pa_signer: str
    generator_metadata: _containers.RepeatedScalarFieldContainer[str]
    generator_name: str
    camera_make: str
    camera_model: str
    software: str
    invisible_watermarks: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, c2pa_present: _Optional[bool] = ..., c2pa_claim_generator: _Optional[str] = ..., c2pa_digital_source_type: _Optional[str] = ..., c2pa_signature: _Optional[_Union[C2paSignature, str]] = ..., c2pa_validation_errors: _Optional[_Iterable[str]] = ..., c2pa_signer: _Optional[str] = ..., generator_metadata: _Optional[_Iterable[str]] = ..., generator_name: _Optional[str] = ..., camera_make: _Optional[str] = ..., camera_model: _Optional[str] = ..., software: _Optional[str] = ..., invisible_watermarks: _Optional[_Iterable[str]] = ...) -> None: ...

class Region(_message.Message):
    __slots__ = ("row", "column", "left", "top", "right", "bottom", "prob_ai")
    ROW_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    LEFT_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    RIGHT_FIELD_NUMBER: _ClassVar[int]
    BOTTOM_FIELD_NUMBER: _ClassVar[int]
    PROB_AI_FIELD_NUMBER: _ClassVar[int]
    row: int
    column: int
    left: int
    top: int
    right: int
    bottom: int
    prob_ai: float
    def __init__(self, row: _Optional[int] = ..., column: _Optional[int] = ..., left: _Optional[int] = ..., top: _Optional[int] = ..., right: _Optional[int] = ..., bottom: _Optional[int] = ..., prob_ai: _Optional[float] = ...) -> None: ...

class RegionMap(_message.Message):
    __slots__ = ("state", "rows", "columns", "regions", "disagreement", "reason", "progress")
    STATE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    DISAGREEMENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    state: RegionMapState
    rows: int
    columns: int
    regions: _containers.RepeatedCompositeFieldContainer[Region]
    disagreement: str
    reason: str
    progress: float
    def __init__(self, state: _Optional[_Union[RegionMapState, str]] = ..., rows: _Optional[int] = ..., columns: _Optional[int] = ..., regions: _Optional[_Iterable[_Union[Region, _Mapping]]] = ..., disagreement: _Optional[str] = ..., reason: _Optional[str] = ..., progress: _Optional[float] = ...) -> None: ...

class ImageFacts(_message.Message):
    __slots__ = ("format", "width", "height", "size_bytes", "jpeg_quality", "has_exif")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    JPEG_QUALITY_FIELD_NUMBER: _ClassVar[int]
    HAS_EXIF_FIELD_NUMBER: _ClassVar[int]
    format: str
    width: int
    height: int
    size_bytes: int
    jpeg_quality: int
    has_exif: bool
    def __init__(self, format: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., size_bytes: _Optional[int] = ..., jpeg_quality: _Optional[int] = ..., has_exif: _Optional[bool] = ...) -> None: ...

class GeneratorFamily(_message.Message):
    __slots__ = ("family", "name", "probability", "runner_up", "runner_up_name", "runner_up_probability", "unknown", "explanation")
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    RUNNER_UP_FIELD_NUMBER: _ClassVar[int]
    RUNNER_UP_NAME_FIELD_NUMBER: _ClassVar[int]
    RUNNER_UP_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    family: str
    name: str
    probability: float
    runner_up: str
    runner_up_name: str
    runner_up_probability: float
    unknown: bool
    explanation: str
    def __init__(self, family: _Optional[str] = ..., name: _Optional[str] = ..., probability: _Optional[float] = ..., runner_up: _Optional[str] = ..., runner_up_name: _Optional[str] = ..., runner_up_probability: _Optional[float] = ..., unknown: _Optional[bool] = ..., explanation: _Optional[str] = ...) -> None: ...

class Stability(_message.Message):
    __slots__ = ("stable", "flips_when_shared", "crops_disagree", "social_copy_prob_ai", "crop_prob_ai_min", "crop_prob_ai_max", "explanation")
    STABLE_FIELD_NUMBER: _ClassVar[int]
    FLIPS_WHEN_SHARED_FIELD_NUMBER: _ClassVar[int]
    CROPS_DISAGREE_FIELD_NUMBER: _ClassVar[int]
    SOCIAL_COPY_PROB_AI_FIELD_NUMBER: _ClassVar[int]
    CROP_PROB_AI_MIN_FIELD_NUMBER: _ClassVar[int]
    CROP_PROB_AI_MAX_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    stable: bool
    flips_when_shared: bool
    crops_disagree: bool
    social_copy_prob_ai: float
    crop_prob_ai_min: float
    crop_prob_ai_max: float
    explanation: str
    def __init__(self, stable: _Optional[bool] = ..., flips_when_shared: _Optional[bool] = ..., crops_disagree: _Optional[bool] = ..., social_copy_prob_ai: _Optional[float] = ..., crop_prob_ai_min: _Optional[float] = ..., crop_prob_ai_max: _Optional[float] = ..., explanation: _Optional[str] = ...) -> None: ...

class FrameVerdict(_message.Message):
    __slots__ = ("index", "time_ms", "prob_ai", "label", "scene_cut")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    PROB_AI_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCENE_CUT_FIELD_NUMBER: _ClassVar[int]
    index: int
    time_ms: int
    prob_ai: float
    label: _common_pb2.Label
    scene_cut: bool
    def __init__(self, index: _Optional[int] = ..., time_ms: _Optional[int] = ..., prob_ai: _Optional[float] = ..., label: _Optional[_Union[_common_pb2.Label, str]] = ..., scene_cut: _Optional[bool] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("start_ms", "end_ms", "frame_count", "mean_prob_ai")
    START_MS_FIELD_NUMBER: _ClassVar[int]
    END_MS_FIELD_NUMBER: _ClassVar[int]
    FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_PROB_AI_FIELD_NUMBER: _ClassVar[int]
    start_ms: int
    end_ms: int
    frame_count: int
    mean_prob_ai: float
    def __init__(self, start_ms: _Optional[int] = ..., end_ms: _Optional[int] = ..., frame_count: _Optional[int] = ..., mean_prob_ai: _Optional[float] = ...) -> None: ...

class Timeline(_message.Message):
    __slots__ = ("duration_ms", "frames_in_file", "frames_read", "frames_skipped", "sampling_policy", "frames", "segments", "summary", "has_audio")
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_IN_FILE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_READ_FIELD_NUMBER: _ClassVar[int]
    FRAMES_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_POLICY_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    HAS_AUDIO_FIELD_NUMBER: _ClassVar[int]
    duration_ms: int
    frames_in_file: int
    frames_read: int
    frames_skipped: int
    sampling_policy: str
    frames: _containers.RepeatedCompositeFieldContainer[FrameVerdict]
    segments: _containers.RepeatedCompositeFieldContainer[Segment]
    summary: str
    has_audio: bool
    def __init__(self, duration_ms: _Optional[int] = ..., frames_in_file: _Optional[int] = ..., frames_read: _Optional[int] = ..., frames_skipped: _Optional[int] = ..., sampling_policy: _Optional[str] = ..., frames: _Optional[_Iterable[_Union[FrameVerdict, _Mapping]]] = ..., segments: _Optional[_Iterable[_Union[Segment, _Mapping]]] = ..., summary: _Optional[str] = ..., has_audio: _Optional[bool] = ...) -> None: ...

class AnalysisResult(_message.Message):
    __slots__ = ("image_id", "state", "stage", "progress", "label", "confidence", "prob_ai", "confidence_band", "model_version", "signals", "provenance", "image_facts", "analysis_duration", "failure_reason", "report_id", "create_time", "start_time", "finish_time", "explanation", "filename", "region_map", "generator_family", "stability", "external_id", "media_kind", "timeline")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    PROB_AI_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_BAND_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FACTS_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_DURATION_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    FINISH_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    REGION_MAP_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_FAMILY_FIELD_NUMBER: _ClassVar[int]
    STABILITY_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_KIND_FIELD_NUMBER: _ClassVar[int]
    TIMELINE_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    state: _common_pb2.AnalysisState
    stage: _common_pb2.AnalysisStage
    progress: float
    label: _common_pb2.Label
    confidence: float
    prob_ai: float
    confidence_band: _common_pb2.ConfidenceBand
    model_version: str
    signals: _containers.RepeatedCompositeFieldContainer[Signal]
    provenance: Provenance
    image_facts: ImageFacts
    analysis_duration: _duration_pb2.Duration
    failure_reason: str
    report_id: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    finish_time: _timestamp_pb2.Timestamp
    explanation: str
    filename: str
    region_map: RegionMap
    generator_family: GeneratorFamily
    stability: Stability
    external_id: str
    media_kind: MediaKind
    timeline: Timeline
    def __init__(self, image_id: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.AnalysisState, str]] = ..., stage: _Optional[_Union[_common_pb2.AnalysisStage, str]] = ..., progress: _Optional[float] = ..., label: _Optional[_Union[_common_pb2.Label, str]] = ..., confidence: _Optional[float] = ..., prob_ai: _Optional[float] = ..., confidence_band: _Optional[_Union[_common_pb2.ConfidenceBand, str]] = ..., model_version: _Optional[str] = ..., signals: _Optional[_Iterable[_Union[Signal, _Mapping]]] = ..., provenance: _Optional[_Union[Provenance, _Mapping]] = ..., image_facts: _Optional[_Union[ImageFacts, _Mapping]] = ..., analysis_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., failure_reason: _Optional[str] = ..., report_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., explanation: _Optional[str] = ..., filename: _Optional[str] = ..., region_map: _Optional[_Union[RegionMap, _Mapping]] = ..., generator_family: _Optional[_Union[GeneratorFamily, _Mapping]] = ..., stability: _Optional[_Union[Stability, _Mapping]] = ..., external_id: _Optional[str] = ..., media_kind: _Optional[_Union[MediaKind, str]] = ..., timeline: _Optional[_Union[Timeline, _Mapping]] = ...) -> None: ...

class AnalysisEvent(_message.Message):
    __slots__ = ("image_id", "state", "stage", "progress", "message", "event_time", "result")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    state: _common_pb2.AnalysisState
    stage: _common_pb2.AnalysisStage
    progress: float
    message: str
    event_time: _timestamp_pb2.Timestamp
    result: AnalysisResult
    def __init__(self, image_id: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.AnalysisState, str]] = ..., stage: _Optional[_Union[_common_pb2.AnalysisStage, str]] = ..., progress: _Optional[float] = ..., message: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., result: _Optional[_Union[AnalysisResult, _Mapping]] = ...) -> None: ...

class GetResultRequest(_message.Message):
    __slots__ = ("image_id",)
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    def __init__(self, image_id: _Optional[str] = ...) -> None: ...

class GetResultResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: AnalysisResult
    def __init__(self, result: _Optional[_Union[AnalysisResult, _Mapping]] = ...) -> None: ...

class WatchAnalysisRequest(_message.Message):
    __slots__ = ("image_id",)
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    def __init__(self, image_id: _Optional[str] = ...) -> None: ...

class WatchAnalysisResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: AnalysisEvent
    def __init__(self, event: _Optional[_Union[AnalysisEvent, _Mapping]] = ...) -> None: ...

class ListResultsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "label", "since", "until", "filename_contains", "order_by", "external_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    FILENAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    label: _common_pb2.Label
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    filename_contains: str
    order_by: str
    external_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., label: _Optional[_Union[_common_pb2.Label, str]] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., filename_contains: _Optional[str] = ..., order_by: _Optional[str] = ..., external_id: _Optional[str] = ...) -> None: ...

class ListResultsResponse(_message.Message):
    __slots__ = ("results", "next_page_token", "total_size")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[AnalysisResult]
    next_page_token: str
    total_size: int
    def __init__(self, results: _Optional[_Iterable[_Union[AnalysisResult, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class GetRegionMapRequest(_message.Message):
    __slots__ = ("image_id", "max_side")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_SIDE_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    max_side: int
    def __init__(self, image_id: _Optional[str] = ..., max_side: _Optional[int] = ...) -> None: ...

class GetRegionMapResponse(_message.Message):
    __slots__ = ("png", "width", "height", "region_map")
    PNG_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    REGION_MAP_FIELD_NUMBER: _ClassVar[int]
    png: bytes
    width: int
    height: int
    region_map: RegionMap
    def __init__(self, png: _Optional[bytes] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., region_map: _Optional[_Union[RegionMap, _Mapping]] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelStatistics(_message.Message):
    __slots__ = ("inference_count", "failure_count", "mean_latency_ms", "p95_latency_ms")
    INFERENCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    P95_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    inference_count: int
    failure_count: int
    mean_latency_ms: float
    p95_latency_ms: float
    def __init__(self, inference_count: _Optional[int] = ..., failure_count: _Optional[int] = ..., mean_latency_ms: _Optional[float] = ..., p95_latency_ms: _Optional[float] = ...) -> None: ...

class RealKindFalsePositiveRate(_message.Message):
    __slots__ = ("kind", "description", "test_images", "wrongly_called_ai")
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TEST_IMAGES_FIELD_NUMBER: _ClassVar[int]
    WRONGLY_CALLED_AI_FIELD_NUMBER: _ClassVar[int]
    kind: str
    description: str
    test_images: int
    wrongly_called_ai: float
    def __init__(self, kind: _Optional[str] = ..., description: _Optional[str] = ..., test_images: _Optional[int] = ..., wrongly_called_ai: _Optional[float] = ...) -> None: ...

class FamilyCatchRate(_message.Message):
    __slots__ = ("family", "name", "test_images", "caught")
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEST_IMAGES_FIELD_NUMBER: _ClassVar[int]
    CAUGHT_FIELD_NUMBER: _ClassVar[int]
    family: str
    name: str
    test_images: int
    caught: float
    def __init__(self, family: _Optional[str] = ..., name: _Optional[str] = ..., test_images: _Optional[int] = ..., caught: _Optional[float] = ...) -> None: ...

class VideoCompressionAccuracy(_message.Message):
    __slots__ = ("variant", "description", "test_images", "ai_images", "accuracy", "roc_auc", "ai_recall", "real_accuracy")
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TEST_IMAGES_FIELD_NUMBER: _ClassVar[int]
    AI_IMAGES_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    ROC_AUC_FIELD_NUMBER: _ClassVar[int]
    AI_RECALL_FIELD_NUMBER: _ClassVar[int]
    REAL_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    variant: str
    description: str
    test_images: int
    ai_images: int
    accuracy: float
    roc_auc: float
    ai_recall: float
    real_accuracy: float
    def __init__(self, variant: _Optional[str] = ..., description: _Optional[str] = ..., test_images: _Optional[int] = ..., ai_images: _Optional[int] = ..., accuracy: _Optional[float] = ..., roc_auc: _Optional[float] = ..., ai_recall: _Optional[float] = ..., real_accuracy: _Optional[float] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "weights_sha256", "threshold", "input_description", "training_data", "validation_metrics", "load_time", "statistics", "false_positive_rates", "family_catch_rates", "moving_pictures", "video_compression", "video_compression_measured_with")
    class ValidationMetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_SHA256_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    INPUT_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DATA_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_METRICS_FIELD_NUMBER: _ClassVar[int]
    LOAD_TIME_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    FALSE_POSITIVE_RATES_FIELD_NUMBER: _ClassVar[int]
    FAMILY_CATCH_RATES_FIELD_NUMBER: _ClassVar[int]
    MOVING_PICTURES_FIELD_NUMBER: _ClassVar[int]
    VIDEO_COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    VIDEO_COMPRESSION_MEASURED_WITH_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    weights_sha256: str
    threshold: float
    input_description: str
    training_data: str
    validation_metrics: _containers.ScalarMap[str, float]
    load_time: _timestamp_pb2.Timestamp
    statistics: ModelStatistics
    false_positive_rates: _containers.RepeatedCompositeFieldContainer[RealKindFalsePositiveRate]
    family_catch_rates: _containers.RepeatedCompositeFieldContainer[FamilyCatchRate]
    moving_pictures: str
    video_compression: _containers.RepeatedCompositeFieldContainer[VideoCompressionAccuracy]
    video_compression_measured_with: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., weights_sha256: _Optional[str] = ..., threshold: _Optional[float] = ..., input_description: _Optional[str] = ..., training_data: _Optional[str] = ..., validation_metrics: _Optional[_Mapping[str, float]] = ..., load_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., statistics: _Optional[_Union[ModelStatistics, _Mapping]] = ..., false_positive_rates: _Optional[_Iterable[_Union[RealKindFalsePositiveRate, _Mapping]]] = ..., family_catch_rates: _Optional[_Iterable[_Union[FamilyCatchRate, _Mapping]]] = ..., moving_pictures: _Optional[str] = ..., video_compression: _Optional[_Iterable[_Union[VideoCompressionAccuracy, _Mapping]]] = ..., video_compression_measured_with: _Optional[str] = ...) -> None: ...

class GetModelInfoResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelInfo
    def __init__(self, model: _Optional[_Union[ModelInfo, _Mapping]] = ...) -> None: ...
