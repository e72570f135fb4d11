"""Proto <-> domain conversion for images and analyses (IngestionService, ResultsService)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from pixelcheck.analysis.detector import ModelInfo
from pixelcheck.analysis.detector.regions import RegionMapView
from pixelcheck.analysis.models import Analysis
from pixelcheck.analysis.progress import STAGE_MESSAGES, ProgressEvent
from pixelcheck.analysis.region_maps import region_map_view
from pixelcheck.analysis.service import ModelStatistics, ResultFilters
from pixelcheck.api.convert import optional_time
from pixelcheck.errors import InvalidInput
from pixelcheck.ingestion.service import ImageView
from pixelcheck.ingestion.validation import UploadMetadata
from pixelcheck.v1 import common_pb2, ingestion_pb2, results_pb2

_STATES = {name: getattr(common_pb2, f"ANALYSIS_STATE_{name}") for name in ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED")}
_STAGES = {name: getattr(common_pb2, f"ANALYSIS_STAGE_{name}") for name in
           ("QUEUED", "DECODING", "PROVENANCE", "PIXEL_MODEL", "FUSION", "SAVING", "DONE")}
_LABELS = {"AI": common_pb2.LABEL_AI, "REAL": common_pb2.LABEL_REAL}
_BANDS = {"LOW": common_pb2.CONFIDENCE_BAND_LOW, "MEDIUM": common_pb2.CONFIDENCE_BAND_MEDIUM,
          "HIGH": common_pb2.CONFIDENCE_BAND_HIGH}
_SIGNATURES = {name: getattr(results_pb2, f"C2PA_SIGNATURE_{name}") for name in
               ("ABSENT", "VALID", "INVALID", "UNREADABLE")}


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def upload_metadata(message: ingestion_pb2.UploadMetadata) -> UploadMetadata:
    return UploadMetadata(filename=message.filename, size_bytes=message.size_bytes,
                          content_type=message.content_type, sha256=message.sha256, request_id=message.request_id,
                          external_id=message.external_id)


def image_to_proto(view: ImageView) -> ingestion_pb2.Image:
    return ingestion_pb2.Image(
        id=view.id, owner_id=view.owner_id, filename=view.filename, content_type=view.content_type,
        size_bytes=view.size_bytes, width=view.width, height=view.height, sha256=view.sha256,
        analysis_state=_STATES.get(view.analysis_state, common_pb2.ANALYSIS_STATE_UNSPECIFIED),
        create_time=_ts(view.create_time), external_id=view.external_id, source_url=view.source_url)


def result_to_proto(row: Analysis) -> results_pb2.AnalysisResult:
    result = results_pb2.AnalysisResult(
        image_id=row.image_id, filename=row.filename, external_id=row.external_id,
        state=_STATES.get(row.state, common_pb2.ANALYSIS_STATE_UNSPECIFIED),
        stage=_STAGES.get(row.stage, common_pb2.ANALYSIS_STAGE_UNSPECIFIED), progress=row.progress,
        model_version=row.model_version, failure_reason=row.failure_reason, report_id=row.report_id,
        create_time=_ts(row.create_time), start_time=_ts(row.start_time), finish_time=_ts(row.finish_time))
    if row.duration_ms is not None:
        result.analysis_duration.CopyFrom(Duration(seconds=row.duration_ms // 1000,
                                                   nanos=(row.duration_ms % 1000) * 1_000_000))
    if row.state != "SUCCEEDED":
        return result
    result.label = _LABELS.get(row.label or "", common_pb2.LABEL_UNSPECIFIED)
    result.confidence = row.confidence or 0.0
    result.prob_ai = row.prob_ai or 0.0
    result.confidence_band = _BANDS.get(row.confidence_band or "", common_pb2.CONFIDENCE_BAND_UNSPECIFIED)
    result.explanation = row.explanation
    for s in sorted(row.signals or [], key=lambda s: -float(s.get("weight", 0))):
        result.signals.add(name=s["name"], score=s["score"], weight=s["weight"], explanation=s["explanation"])
    p = row.provenance or {}
    result.provenance.CopyFrom(results_pb2.Provenance(
        c2pa_present=bool(p.get("c2pa_present")), c2pa_claim_generator=p.get("c2pa_claim_generator", ""),
        c2pa_digital_source_type=p.get("c2pa_digital_source_type", ""),
        c2pa_signature=_SIGNATURES.get(p.get("c2pa_signature", "ABSENT"), results_pb2.C2PA_SIGNATURE_UNSPECIFIED),
        c2pa_validation_errors=list(p.get("c2pa_validation_errors", [])), c2pa_signer=p.get("c2pa_signer", ""),
        generator_metadata=list(p.get("generator_metadata", [])), generator_name=p.get("generator_name", ""),
        camera_make=p.get("camera_make", ""), camera_model=p.get("camera_model", ""),
        software=p.get("software", ""), invisible_watermarks=list(p.get("invisible_watermarks", []))))
    f = row.image_facts or {}
    if f:
        result.image_facts.CopyFrom(results_pb2.ImageFacts(
            format=f.get("format", ""), width=f.get("width", 0), height=f.get("height", 0),
            size_bytes=f.get("size_bytes", 0), jpeg_quality=f.get("jpeg_quality") or 0,
            has_exif=bool(f.get("has_exif"))))
    if row.region_map_state:
        result.region_map.CopyFrom(region_map_to_proto(region_map_view(row)))
    if row.generator_family:
        g = row.generator_family
        result.generator_family.CopyFrom(results_pb2.GeneratorFamily(
            family=g["family"], name=g["name"], probability=g["probability"], runner_up=g["runner_up"],
            runner_up_name=g["runner_up_name"], runner_up_probability=g["runner_up_probability"],
            unknown=g["unknown"], explanation=g["explanation"]))
    if row.stability:
        t = row.stability
        result.stability.CopyFrom(results_pb2.Stability(
            stable=t["stable"], flips_when_shared=t["flips_when_shared"], crops_disagree=t["crops_disagree"],
            social_copy_prob_ai=t["social_copy_prob_ai"] or 0.0, crop_prob_ai_min=t["crop_prob_min"],
            crop_prob_ai_max=t["crop_prob_max"], explanation=t["explanation"]))
    result.media_kind = _MEDIA_KINDS[row.timeline.get("media_kind", "ANIMATED")] if row.timeline else \
        results_pb2.MEDIA_KIND_STILL
    if row.timeline:
        result.timeline.CopyFrom(timeline_to_proto(row.timeline))
    return result


_MEDIA_KINDS = {"ANIMATED": results_pb2.MEDIA_KIND_ANIMATED, "VIDEO": results_pb2.MEDIA_KIND_VIDEO}


def timeline_to_proto(doc: dict[str, Any]) -> results_pb2.Timeline:
    """The stored frame-by-frame reading of an animation or clip (Analysis.timeline) as a Timeline."""
    return results_pb2.Timeline(
        duration_ms=doc["duration_ms"], frames_in_file=doc["frames_in_file"], frames_read=doc["frames_read"],
        frames_skipped=doc["frames_skipped"], sampling_policy=doc["sampling_policy"], summary=doc["summary"],
        has_audio=bool(doc.get("has_audio")),
        frames=[results_pb2.FrameVerdict(index=f["index"], time_ms=f["time_ms"], prob_ai=f["prob_ai"],
                                         label=_LABELS.get(f["label"], common_pb2.LABEL_UNSPECIFIED),
                                         scene_cut=f["scene_cut"]) for f in doc.get("frames", [])],
        segments=[results_pb2.Segment(start_ms=s["start_ms"], end_ms=s["end_ms"], frame_count=s["frame_count"],
                                      mean_prob_ai=s["mean_prob_ai"]) for s in doc.get("segments", [])])


_MAP_STATES = {name: getattr(results_pb2, f"REGION_MAP_STATE_{name}") for name in
               ("PENDING", "READY", "UNAVAILABLE", "FAILED")}


def region_map_to_proto(view: RegionMapView) -> results_pb2.RegionMap:
    return results_pb2.RegionMap(
        state=_MAP_STATES.get(view.state, results_pb2.REGION_MAP_STATE_UNSPECIFIED), rows=view.rows,
        columns=view.columns, disagreement=view.disagreement, reason=view.reason, progress=view.progress,
        regions=[results_pb2.Region(row=r.row, column=r.column, left=r.box[0], top=r.box[1], right=r.box[2],
                                    bottom=r.box[3], prob_ai=r.prob_ai) for r in view.regions])


def snapshot_event(row: Analysis) -> results_pb2.WatchAnalysisResponse:
    """The first event of a watch: where the analysis is now (with the full result when finished)."""
    event = results_pb2.AnalysisEvent(
        image_id=row.image_id, state=_STATES.get(row.state, 0), stage=_STAGES.get(row.stage, 0),
        progress=row.progress, message=row.failure_reason if row.state == "FAILED" else
        STAGE_MESSAGES.get(row.stage, ""), event_time=_ts(row.update_time))
    if row.state in ("SUCCEEDED", "FAILED"):
        event.result.CopyFrom(result_to_proto(row))
    return results_pb2.WatchAnalysisResponse(event=event)


def progress_event(event: ProgressEvent) -> results_pb2.WatchAnalysisResponse:
    return results_pb2.WatchAnalysisResponse(event=results_pb2.AnalysisEvent(
        image_id=event.image_id, state=_STATES.get(event.state, 0), stage=_STAGES.get(event.stage, 0),
        progress=event.progress, message=event.message,
        event_time=_ts(datetime.fromisoformat(event.event_time))))


def result_filters(request: results_pb2.ListResultsRequest) -> ResultFilters:
    if request.label not in (common_pb2.LABEL_UNSPECIFIED, common_pb2.LABEL_AI, common_pb2.LABEL_REAL):
        raise InvalidInput(f"label {request.label} is not a Label value", reason="INVALID_ENUM_VALUE",
                           violations=[("label", "unknown enum value")])
    label = {common_pb2.LABEL_AI: "AI", common_pb2.LABEL_REAL: "REAL"}.get(request.label, "")
    since, until = optional_time(request, "since"), optional_time(request, "until")
    return ResultFilters(label=label, since=since, until=until, filename_contains=request.filename_contains,
                         order_by=request.order_by, external_id=request.external_id)


def model_info_to_proto(info: ModelInfo, stats: ModelStatistics, load_time: datetime) -> results_pb2.ModelInfo:
    card = info.model_card
    false_positives = [
        results_pb2.RealKindFalsePositiveRate(kind=kind, description=str(v["description"]), test_images=int(v["n"]),
                                              wrongly_called_ai=float(v["wrongly_called_ai"]))
        for kind, v in card.get("false_positive_rate_by_real_kind", {}).items()]
    catches = [
        results_pb2.FamilyCatchRate(family=family, name=str(v["name"]), test_images=int(v["n"]),
                                    caught=float(v["caught"]))
        for family, v in card.get("catch_rate_by_family", {}).items()]
    video = info.video_card
    variants = video.get("variants", {})
    compression = [
        results_pb2.VideoCompressionAccuracy(
            variant=name, description=str(v["description"]), test_images=int(v["n"]), ai_images=int(v["n_ai"]),
            accuracy=float(v["accuracy"]), roc_auc=float(v["roc_auc"]), ai_recall=float(v["ai_recall"]),
            real_accuracy=float(v["real_accuracy"]))
        for name, v in (variants.items() if isinstance(variants, dict) else ())]
    return results_pb2.ModelInfo(
        moving_pictures=info.moving_pictures, video_compression=compression,
        video_compression_measured_with=str(video.get("measured_with", "")),
        false_positive_rates=false_positives, family_catch_rates=catches,
        name=info.name, version=info.version, weights_sha256=info.weights_sha256, threshold=info.threshold,
        input_description=info.input_description,
        training_data=f"{info.training_data} {info.licence_note}".strip(),
        validation_metrics={k: float(v) for k, v in info.metrics.items()}, load_time=_ts(load_time),
        statistics=results_pb2.ModelStatistics(
            inference_count=stats.inference_count, failure_count=stats.failure_count,
            mean_latency_ms=stats.mean_latency_ms, p95_latency_ms=stats.p95_latency_ms))
