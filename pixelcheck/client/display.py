"""What the command-line client prints: a stderr progress bar, tables, result details and JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from google.protobuf import json_format
from google.protobuf.message import Message

from pixelcheck.v1 import common_pb2, ingestion_pb2, reports_pb2, results_pb2, webhooks_pb2

MIB = 1024 * 1024


class ProgressBar:
    """A one-line bar redrawn in place on stderr; silent when the stream is not a terminal."""

    def __init__(self, label: str, *, stream: TextIO | None = None, enabled: bool = True, width: int = 28) -> None:
        self._stream = stream or sys.stderr
        self.enabled = enabled and self._stream.isatty()
        self._label, self._width = label, width
        self._last: tuple[int, str] | None = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def update(self, fraction: float, detail: str = "") -> None:
        """Show `fraction` (0–1) done, with a short detail after the percentage."""
        if not self.enabled:
            return
        fraction = min(max(fraction, 0.0), 1.0)
        filled = round(fraction * self._width)
        if self._last == (filled, detail):
            return  # nothing visible changed; spare the terminal
        self._last = (filled, detail)
        bar = "#" * filled + "." * (self._width - filled)
        self._stream.write(f"\r{self._label} [{bar}] {fraction:4.0%} {detail}\x1b[K")
        self._stream.flush()

    def bytes_done(self, done: int, total: int) -> None:
        """Progress callback for uploads and downloads: (bytes done, bytes in total)."""
        self.update(done / total if total else 1.0, f"{done / MIB:.1f}/{total / MIB:.1f} MiB")

    def close(self) -> None:
        """End the line so later output starts on its own."""
        if self.enabled and self._last is not None:
            self._stream.write("\n")
            self._stream.flush()
            self._last = None


def enum_name(enum: Any, value: int, prefix: str) -> str:
    """`LABEL_AI` → `AI`; empty for the UNSPECIFIED zero value."""
    name = enum.Name(value).removeprefix(prefix)
    return "" if name == "UNSPECIFIED" else name


def state_name(state: int) -> str:
    """The analysis state without its prefix, e.g. SUCCEEDED."""
    return enum_name(common_pb2.AnalysisState, state, "ANALYSIS_STATE_")


def stage_name(stage: int) -> str:
    """The analysis stage without its prefix, e.g. PIXEL_MODEL."""
    return enum_name(common_pb2.AnalysisStage, stage, "ANALYSIS_STAGE_")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last column is left ragged."""
    widths = [max(len(str(row[i])) for row in (headers, *rows)) for i in range(len(headers))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in (headers, *rows)]
    return "\n".join(lines)


def to_json(value: Message | Sequence[Message] | dict[str, Any] | list[dict[str, Any]]) -> str:
    """Messages as proto3 JSON with the proto field names, exactly as grpcurl prints them."""
    return json.dumps(as_json(value), indent=2)


def as_json(value: Any) -> Any:
    """A message, or dicts and lists of them, as plain JSON values."""
    if isinstance(value, Message):
        return json_format.MessageToDict(value, preserving_proto_field_name=True)
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    return value


def _verdict(result: results_pb2.AnalysisResult) -> tuple[str, str, str]:
    if result.state != common_pb2.ANALYSIS_STATE_SUCCEEDED:
        return "", "", ""
    band = enum_name(common_pb2.ConfidenceBand, result.confidence_band, "CONFIDENCE_BAND_")
    return enum_name(common_pb2.Label, result.label, "LABEL_"), f"{result.confidence:.2f}", band


def results_table(results: Sequence[results_pb2.AnalysisResult]) -> str:
    """One row per analysis: id, file, state, label, confidence, band."""
    rows = [(r.image_id, r.filename, state_name(r.state), *_verdict(r)) for r in results]
    return table(("IMAGE ID", "FILE", "STATE", "LABEL", "CONFIDENCE", "BAND"), rows)


def uploads_table(responses: Sequence[ingestion_pb2.UploadImageResponse | ingestion_pb2.ImportImageResponse]
                  ) -> str:
    """One row per accepted upload or import."""
    rows = [(r.image.id, r.image.filename, f"{r.image.width}x{r.image.height}", str(r.image.size_bytes),
             state_name(r.image.analysis_state), "yes" if r.duplicate else "") for r in responses]
    return table(("IMAGE ID", "FILE", "PIXELS", "BYTES", "STATE", "DUPLICATE"), rows)


def result_details(result: results_pb2.AnalysisResult) -> str:
    """A readable account of one analysis: verdict, why, and every signal."""
    label, confidence, band = _verdict(result)
    lines = [f"Image       {result.image_id}  {result.filename}".rstrip(),
             f"State       {state_name(result.state)} ({stage_name(result.stage)}, {result.progress:.0%})"]
    if label:
        lines.append(f"Verdict     {label}, confidence {confidence} ({band}), P(AI) {result.prob_ai:.2f}")
        lines.append(f"Model       {result.model_version}")
    if result.explanation:
        lines.append(f"Why         {result.explanation}")
    if result.HasField("generator_family"):
        lines.append(f"Generator   {generator_family_line(result.generator_family)}")
    if result.HasField("stability"):
        lines.append(f"Stability   {stability_line(result.stability)}")
    if result.failure_reason:
        lines.append(f"Failure     {result.failure_reason}")
    if result.report_id:
        lines.append(f"Report      {result.report_id}")
    for mark in result.provenance.invisible_watermarks:
        lines.append(f"Watermark   {mark}")
    if result.HasField("region_map") and result.region_map.state:
        where = " (of the first frame)" if result.HasField("timeline") else ""
        lines.append(f"Region map  {region_map_line(result.region_map)}{where}")
    if result.HasField("timeline"):
        lines += ["", timeline_text(result)]
    if result.signals:
        rows = [(s.name, f"{s.score:.2f}", f"{s.weight:.2f}", s.explanation) for s in result.signals]
        lines += ["", table(("SIGNAL", "SCORE", "WEIGHT", "EXPLANATION"), rows)]
    return "\n".join(lines)


_LEVELS = "▁▂▃▄▅▆▇█"


def clock(ms: int) -> str:
    """m:ss, with tenths when not on a whole second: 0:04, 1:02.5."""
    tenths = round(ms / 100)
    minutes, rest = divmod(tenths, 600)
    seconds, tenth = divmod(rest, 10)
    return f"{minutes}:{seconds:02d}" + (f".{tenth}" if tenth else "")


def timeline_text(result: results_pb2.AnalysisResult) -> str:
    """An animation's timeline in a few lines: counts, a P(AI) strip (one mark per frame read, taller is more
    AI-like), the AI segments and each frame read with its time."""
    t = result.timeline
    skipped = f"; {t.frames_skipped} could not be decoded and were skipped" if t.frames_skipped else ""
    lines = [f"Timeline    {t.frames_read} of {t.frames_in_file} frames read over {clock(t.duration_ms)}{skipped}"]
    if t.frames:
        strip = "".join(_LEVELS[min(int(f.prob_ai * len(_LEVELS)), len(_LEVELS) - 1)] for f in t.frames)
        lines.append(f"P(AI)       {strip}  ({clock(t.frames[0].time_ms)} to {clock(t.frames[-1].time_ms)})")
    for segment in t.segments:
        lines.append(f"AI segment  {clock(segment.start_ms)}–{clock(segment.end_ms)}: {segment.frame_count} frames, "
                     f"mean P(AI) {segment.mean_prob_ai:.2f}")
    lines.append(f"Summary     {t.summary}")
    rows = [(clock(f.time_ms), str(f.index), f"{f.prob_ai:.2f}", enum_name(common_pb2.Label, f.label, "LABEL_"),
             "scene cut" if f.scene_cut else "") for f in t.frames]
    if rows:
        lines += ["", table(("TIME", "FRAME", "P(AI)", "LABEL", "READ FOR"), rows)]
    return "\n".join(lines)


def generator_family_line(family: results_pb2.GeneratorFamily) -> str:
    """The most likely generator family and the runner-up, or 'unknown family', in one line."""
    if family.unknown:
        return (f"unknown family (closest: {family.runner_up_name}, {family.runner_up_probability:.0%}, "
                "not likely enough to name)")
    return (f"{family.name} ({family.probability:.0%}); runner-up {family.runner_up_name} "
            f"({family.runner_up_probability:.0%})")


def stability_line(stability: results_pb2.Stability) -> str:
    """Whether the pixel verdict survives a messaging-app copy and the image's parts agree, in one line."""
    copy = f"messaging-app copy P(AI) {stability.social_copy_prob_ai:.2f}"
    parts = f"parts P(AI) {stability.crop_prob_ai_min:.2f}-{stability.crop_prob_ai_max:.2f}"
    if stability.stable:
        return f"stable ({copy}, {parts})"
    return f"NOT stable ({copy}, {parts}). {stability.explanation}"


def region_map_line(region_map: results_pb2.RegionMap) -> str:
    """Where the region map stands, in one line (with its disagreement sentence when any)."""
    state = enum_name(results_pb2.RegionMapState, region_map.state, "REGION_MAP_STATE_")
    if state == "READY":
        probs = [r.prob_ai for r in region_map.regions]
        spread = f", P(AI) {min(probs):.2f}-{max(probs):.2f}" if probs else ""
        text = f"READY, {region_map.rows}x{region_map.columns} regions{spread}"
        return f"{text}. {region_map.disagreement}" if region_map.disagreement else text
    if state == "PENDING":
        return f"PENDING ({region_map.progress:.0%} scored)"
    return f"{state}: {region_map.reason}" if region_map.reason else state


def webhooks_table(endpoints: Sequence[webhooks_pb2.WebhookEndpoint]) -> str:
    """One row per webhook endpoint; a disabled one says why below the table."""
    rows = [(e.id, enum_name(webhooks_pb2.WebhookEndpointState, e.state, "WEBHOOK_ENDPOINT_STATE_"),
             ",".join(enum_name(webhooks_pb2.WebhookEventType, t, "WEBHOOK_EVENT_TYPE_").lower().replace("_", ".", 1)
                      for t in e.event_types), e.url) for e in endpoints]
    notes = [f"{e.id}: {e.disabled_reason}" for e in endpoints if e.disabled_reason]
    return "\n".join([table(("ENDPOINT ID", "STATE", "EVENTS", "URL"), rows), *notes])


def deliveries_table(deliveries: Sequence[webhooks_pb2.WebhookDelivery]) -> str:
    """One row per delivery: state, attempts, the status codes so far, the next retry or the last error."""
    rows = []
    for d in deliveries:
        state = enum_name(webhooks_pb2.WebhookDeliveryState, d.state, "WEBHOOK_DELIVERY_STATE_")
        upcoming = d.next_attempt_time.ToDatetime().strftime("%H:%M:%S") if d.HasField("next_attempt_time") else ""
        rows.append((d.id, enum_name(webhooks_pb2.WebhookEventType, d.event_type, "WEBHOOK_EVENT_TYPE_"), state,
                     str(d.attempts), " ".join(str(c) for c in d.attempt_status_codes), upcoming, d.last_error))
    return table(("DELIVERY ID", "EVENT", "STATE", "ATTEMPTS", "STATUS CODES", "NEXT", "LAST ERROR"), rows)


def report_line(report: reports_pb2.Report) -> str:
    """Id, state, format and file of a report."""
    state = enum_name(common_pb2.ReportState, report.state, "REPORT_STATE_")
    fmt = enum_name(common_pb2.ReportFormat, report.format, "REPORT_FORMAT_")
    failure = f"  {report.failure_reason}" if report.failure_reason else ""
    return table(("REPORT ID", "STATE", "FORMAT", "IMAGES", "FILE"),
                 [(report.id, state, fmt, str(len(report.image_ids)), report.filename)]) + failure
