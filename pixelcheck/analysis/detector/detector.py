"""The Detector: decode, read provenance, run the pixel model, fuse — one call per uploaded file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from pixelcheck.analysis.detector.animation import AnimationFrames, read_timeline
from pixelcheck.analysis.detector.artifact import Artifact, DetectorLoadError, load_artifact, load_video_card
from pixelcheck.analysis.detector.container_tags import scan_container_tags
from pixelcheck.analysis.detector.content_credentials import CredentialFindings, CredentialReader
from pixelcheck.analysis.detector.frame_reader import animation_facts
from pixelcheck.analysis.detector.fusion import BandPolicy, build_provenance, fuse
from pixelcheck.analysis.detector.image_facts import ImageUnreadable, decode_rgb, describe, open_image
from pixelcheck.analysis.detector.metadata_scan import MetadataFindings, scan_metadata
from pixelcheck.analysis.detector.pixel_model import PixelModel, PixelReading
from pixelcheck.analysis.detector.regions import region_crop_size
from pixelcheck.analysis.detector.timeline import SamplingPolicy, moving_pictures_method
from pixelcheck.analysis.detector.verdict import ImageFacts, ModelInfo, Stage, Timeline, Verdict
from pixelcheck.analysis.detector.video_reader import VideoFrames
from pixelcheck.analysis.detector.watermarks import WatermarkFinding, find_watermarks
from pixelcheck.analysis.shipped_model import SHIPPED_MODEL_DIR
from pixelcheck.image_formats import SNIFF_BYTES
from pixelcheck.video_formats import VideoUnreadable, probe_video, read_head, sniff_video_type

DEFAULT_MODEL_DIR = SHIPPED_MODEL_DIR


class Detector:
    """A loaded model artifact plus the provenance readers; analyze() is thread-safe."""

    def __init__(self, artifact: Artifact, threshold: float | None = None,
                 frames: SamplingPolicy | None = None, max_decoded_frames: int = 36_000) -> None:
        meta = artifact.metadata
        self._frames = frames or SamplingPolicy()
        self._max_decoded_frames = max_decoded_frames  # of a video clip
        self._artifact = artifact
        self._threshold = float(meta["threshold"] if threshold is None else threshold)
        if not 0.0 < self._threshold < 1.0:
            raise DetectorLoadError(f"threshold must lie strictly between 0 and 1, got {self._threshold}")
        self._policy = BandPolicy(high=float(meta["bands"]["high"]), medium=float(meta["bands"]["medium"]))
        try:
            self._pixel = PixelModel(
                artifact.weights,
                meta["calibration"],
                int(meta.get("input", {}).get("crops", 4)),
                families=meta.get("families"),
                region_calibration=meta.get("regions", {}).get("calibration"),
            )
        except Exception as error:
            raise DetectorLoadError(f"model weights in {artifact.directory} cannot be loaded: {error}") from error
        self._credentials = CredentialReader()
        self._info = ModelInfo(
            name=str(meta["name"]),
            version=str(meta["version"]),
            weights_sha256=str(meta["weights_sha256"]),
            threshold=self._threshold,
            input_description=str(meta.get("input", {}).get("description", "")),
            training_data=str(meta.get("training_data", {}).get("description", "")),
            metrics={k: float(v) for k, v in meta.get("metrics_summary", {}).items() if v is not None},
            licence_note=str(meta.get("licence_note", "")),
            model_card=dict(meta.get("model_card", {})),
            moving_pictures=moving_pictures_method(frames or SamplingPolicy()),
            video_card=load_video_card(artifact.directory),
        )

    @property
    def info(self) -> ModelInfo:
        """Name, version, digest, threshold and headline metrics of the loaded model."""
        return self._info

    @property
    def pixel_model(self) -> PixelModel:
        """The loaded pixel model, for callers that score regions (PixelModel.score_boxes)."""
        return self._pixel

    @property
    def model_version(self) -> str:
        """'<name>-<version>' as stamped on every verdict."""
        return self._artifact.full_name

    def score_regions(self, rgb: Image.Image, boxes: list[tuple[int, int, int, int]], *,
                      regions: int | None = None) -> list[float]:
        """Calibrated P(AI) of each (left, top, right, bottom) box of a decoded RGB picture, by the pixel model
        that makes the verdicts (the region map's reading); `regions` is the whole map's region count when
        `boxes` are a part of it (it sets the crop size, regions.region_crop_size)."""
        return self._pixel.score_boxes(rgb, boxes, region_crop_size(regions or len(boxes)))

    def analyze(self, source: bytes | str, *, on_stage: Callable[[Stage], None] | None = None,
                on_frame: Callable[[int, int], None] | None = None) -> Verdict:
        """Analyse one uploaded file: its bytes, or the path of a (local copy of a) video clip; raises
        ImageUnreadable when it cannot be decoded.

        An animation or a video clip is read frame by frame in one decoding pass (on_frame(done, total) after
        each frame the pixel model reads, total being the frames planned so far: see read_timeline): its verdict
        carries a Timeline, and its provenance, watermark and image facts come from the file and its first frame,
        as a still picture's do (a clip's provenance from its container's tags)."""
        notify = on_stage or (lambda stage: None)
        notify(Stage.DECODING)
        if isinstance(source, str) or sniff_video_type(source[:SNIFF_BYTES]):
            return self._analyze_clip(source, notify, on_frame or (lambda done, total: None))
        data = source
        image = open_image(data)
        rgb = decode_rgb(image)
        facts = animation_facts(image, data)
        notify(Stage.PROVENANCE)
        credentials = self._credentials.read(data)
        metadata = scan_metadata(data, image)
        marks = find_watermarks(rgb)
        notify(Stage.PIXEL_MODEL)
        timeline = None
        if facts is None:
            reading = self._pixel.run(rgb)
        else:
            reading, timeline = read_timeline(AnimationFrames(data, facts), self._pixel, self._threshold,
                                              self._frames, on_frame or (lambda done, total: None))
        return self._verdict(notify, credentials, metadata, reading, marks, timeline,
                             describe(image, data, metadata.has_exif))

    def _analyze_clip(self, source: bytes | str, notify: Callable[[Stage], None],
                      on_frame: Callable[[int, int], None]) -> Verdict:
        """A video clip: its frames through the same timeline as an animation's, in one decoding pass, its
        provenance from the container (tags, C2PA) and, for invisible watermarks, its first frame read."""
        try:
            clip = probe_video(source, sniff_video_type(read_head(source, SNIFF_BYTES)) or "")
        except VideoUnreadable as error:
            raise ImageUnreadable(f"The video clip could not be read: {error}.") from error
        notify(Stage.PROVENANCE)
        credentials = self._credentials.read(source)
        metadata = scan_container_tags(clip.tags)
        notify(Stage.PIXEL_MODEL)
        marks: list[WatermarkFinding] = []
        try:
            reading, timeline = read_timeline(VideoFrames(source, clip, self._max_decoded_frames), self._pixel,
                                              self._threshold, self._frames, on_frame,
                                              on_first=lambda first: marks.extend(find_watermarks(first)))
        except VideoUnreadable as error:
            raise ImageUnreadable(f"The video clip could not be read: {error}.") from error
        size = len(source) if isinstance(source, bytes) else os.path.getsize(source)
        facts = ImageFacts(format=clip.format_name, width=clip.width, height=clip.height, size_bytes=size)
        return self._verdict(notify, credentials, metadata, reading, tuple(marks), timeline, facts)

    def _verdict(self, notify: Callable[[Stage], None], credentials: CredentialFindings, metadata: MetadataFindings,
                 reading: PixelReading | None, marks: tuple[WatermarkFinding, ...], timeline: Timeline | None,
                 facts: ImageFacts) -> Verdict:
        notify(Stage.FUSION)
        subject = "image" if timeline is None else "clip" if timeline.media_kind == "VIDEO" else "animation"
        fused = fuse(credentials, metadata, reading, self._threshold, self._policy, marks, subject=subject)
        summary = f"{fused.summary} {timeline.summary}" if timeline is not None else fused.summary
        return Verdict(
            label=fused.label,
            prob_ai=round(fused.prob_ai, 4),
            confidence=round(fused.confidence, 4),
            band=fused.band,
            model_version=self.model_version,
            signals=fused.signals,
            provenance=build_provenance(credentials, metadata, marks),
            image_facts=facts,
            summary=summary,
            generator_family=fused.generator_family,
            stability=fused.stability,
            timeline=timeline,
        )


def load_detector(model_dir: Path, *, threshold: float | None = None, max_frames: int | None = None,
                  max_decoded_frames: int = 36_000) -> Detector:
    """Load and verify the artifact in model_dir; raises DetectorLoadError when it is missing or corrupted.
    max_frames: the most frames of an animation or clip the pixel model reads (SamplingPolicy's default when
    None); max_decoded_frames: the most frames decoded from one video clip."""
    frames = SamplingPolicy(max_frames=max_frames) if max_frames else None
    return Detector(load_artifact(Path(model_dir)), threshold, frames, max_decoded_frames)
