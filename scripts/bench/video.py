#!/usr/bin/env python3
"""Video clips: upload -> clip verdict through the service with one inference worker (solo pool, one core), for a
60-s 1080p and a 10-s 4K H.264 clip made here from the real photos of the detector's pinned test split: a slow
pan and zoom over a wall of photos, cut to a new wall every few seconds, 30 fps, at a phone-like bitrate that fits
PIXELCHECK_VIDEO_MAX_BYTES. Baseline, in the same run: the bare detector (loaded as the worker loads it) on exactly
the frames the service read, as its timeline lists them, decoded beforehand and not timed. Also the worker's peak
memory while it analyses the clip, where the worker's time went (its stage timings), and, in this process, the
timeline's one pass over the clip without the model beside decoding alone (on one thread, as the worker decodes,
and on two for information).
Targets: upload -> verdict <= 1.5x the bare detector on those frames; worker peak RSS <= 600 MiB.

    .venv/bin/python scripts/bench/video.py [--pool ../shared/data/detector] [--clips 1080p,4k] [--database-url URL]
"""

from __future__ import annotations

import argparse
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import grpc
import numpy as np
from PIL import Image
from pixelcheck.v1 import common_pb2, ingestion_pb2, ingestion_pb2_grpc, results_pb2, results_pb2_grpc
from sqlalchemy import create_engine, select
from stack import MIB, Stack, add_stack_arguments, pixelcheck_stack, print_table, rss_kib, synthetic_jpeg

from pixelcheck.analysis.detector import DEFAULT_MODEL_DIR, Detector, load_detector
from pixelcheck.analysis.detector.animation import read_timeline
from pixelcheck.analysis.detector.evaluation import pinned_items
from pixelcheck.analysis.detector.pixel_model import PixelReading
from pixelcheck.analysis.detector.timeline import SamplingPolicy
from pixelcheck.analysis.detector.video_reader import VideoFrames
from pixelcheck.analysis.models import Analysis
from pixelcheck.settings import Settings
from pixelcheck.video_formats import probe_video

FPS = 30
TILE = 256  # the pool's photos are 256 x 256 crops: a wall of them keeps their native texture in the frame
RATIO_TARGET = 1.5
MEMORY_TARGET_MIB = 600
STAGES = ("DECODING", "PROVENANCE", "PIXEL_MODEL", "FUSION", "SAVING")


@dataclass(frozen=True)
class ClipSpec:
    name: str
    width: int
    height: int
    seconds: int
    bit_rate: int  # bits/s: set when VIDEO_MAX_BYTES was 64 MiB (too little for a phone's bitrate at 60 s)
    scenes: int  # walls of photos, one after another, with a cut between them


CLIPS = {
    "1080p": ClipSpec("60 s 1080p H.264", 1920, 1080, 60, 8_000_000, scenes=6),
    "4k": ClipSpec("10 s 4K H.264", 3840, 2160, 10, 40_000_000, scenes=2),
}


def real_photos(pool: Path) -> list[Path]:
    """The real photos of the shipped model's pinned test split, in name order."""
    return [item.path for item in pinned_items(pool, DEFAULT_MODEL_DIR, "test") if not item.is_ai]


def photo_wall(photos: list[Path], columns: int, rows: int) -> Image.Image:
    """columns x rows photos side by side, at their own size."""
    wall = Image.new("RGB", (columns * TILE, rows * TILE))
    for n, path in enumerate(photos[: columns * rows]):
        with Image.open(path) as photo:
            wall.paste(photo.convert("RGB").resize((TILE, TILE)), ((n % columns) * TILE, (n // columns) * TILE))
    return wall


def camera_frames(spec: ClipSpec, photos: list[Path]) -> Iterator[np.ndarray]:
    """spec.seconds x FPS RGB frames: per scene, a wall 20% wider and taller than the frame, slowly zoomed out and
    panned across (a camera moving over it), then a cut to the next wall."""
    columns, rows = -(-spec.width * 6 // 5 // TILE), -(-spec.height * 6 // 5 // TILE)
    per_scene = spec.seconds * FPS // spec.scenes
    for scene in range(spec.scenes):
        wall = photo_wall(photos[scene * columns * rows :], columns, rows)
        for step in range(per_scene):
            progress = step / per_scene
            zoom = 1.0 + 0.15 * progress  # the window shrinks from 1.15 frames to 1.0 frame: a slow zoom
            width, height = spec.width * zoom / 1.15, spec.height * zoom / 1.15
            left = (wall.width - width) * progress
            top = (wall.height - height) * (0.5 + 0.4 * np.sin(np.pi * progress) * (1 if scene % 2 else -1))
            box = (left, top, left + width, top + height)
            yield np.asarray(wall.resize((spec.width, spec.height), Image.Resampling.BILINEAR, box=box))


def camera_clip(spec: ClipSpec, photos: list[Path]) -> bytes:
    """The clip as an MP4: H.264 High, one key frame a second, bitrate-capped as a phone's encoder is."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        rate = str(spec.bit_rate)
        stream = out.add_stream("libx264", rate=FPS, options={"preset": "fast", "g": str(FPS), "maxrate": rate,
                                                              "bufsize": str(spec.bit_rate * 2)})
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = spec.width, spec.height, "yuv420p", spec.bit_rate
        for rgb in camera_frames(spec, photos):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode())
    return buffer.getvalue()


@dataclass
class ServiceRun:
    upload_s: float
    verdict_s: float  # from the first upload message to the verdict
    frame_indices: list[int]
    frames_in_file: int
    state: str
    peak_rss_kib: int
    idle_rss_kib: int
    stage_ms: dict[str, float]


class PeakMemory:
    """Samples a process's resident memory every 50 ms in a thread; the peak is also checked against VmHWM."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_kib = max(self.peak_kib, rss_kib(self._pid))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, rss_kib(self._pid, "VmHWM"))


def analysed(stack: Stack, data: bytes, name: str, content_type: str
             ) -> tuple[float, float, results_pb2.AnalysisResult]:
    """Uploads the file and follows WatchAnalysis to the verdict: (upload s, upload -> verdict s, the result)."""
    messages = [ingestion_pb2.UploadImageRequest(metadata=ingestion_pb2.UploadMetadata(
        filename=name, size_bytes=len(data), content_type=content_type)),
        *(ingestion_pb2.UploadImageRequest(chunk=data[i:i + MIB]) for i in range(0, len(data), MIB))]
    with grpc.insecure_channel(stack.address) as channel:
        ingestion = ingestion_pb2_grpc.IngestionServiceStub(channel)
        results = results_pb2_grpc.ResultsServiceStub(channel)
        started = time.perf_counter()
        image = ingestion.UploadImage(iter(messages), metadata=stack.metadata, timeout=600).image
        uploaded = time.perf_counter()
        for response in results.WatchAnalysis(results_pb2.WatchAnalysisRequest(image_id=image.id),
                                              metadata=stack.metadata, timeout=1800):
            if response.event.state in (common_pb2.ANALYSIS_STATE_SUCCEEDED, common_pb2.ANALYSIS_STATE_FAILED):
                break
        finished = time.perf_counter()
        result = results.GetResult(results_pb2.GetResultRequest(image_id=image.id), metadata=stack.metadata).result
    return uploaded - started, finished - started, result


def through_service(stack: Stack, data: bytes, name: str) -> ServiceRun:
    """The clip through the service once the worker has analysed a photo (its model loaded and warm, as the bare
    detector's is), with the worker's memory sampled throughout."""
    worker = stack.workers[0]
    analysed(stack, synthetic_jpeg(1152, 864, seed=26), "warm-up.jpg", "image/jpeg")
    idle = rss_kib(worker.pid)
    with PeakMemory(worker.pid) as memory:
        upload_s, verdict_s, result = analysed(stack, data, name, "video/mp4")
    state = common_pb2.AnalysisState.Name(result.state).removeprefix("ANALYSIS_STATE_")
    return ServiceRun(upload_s, verdict_s, [f.index for f in result.timeline.frames], result.timeline.frames_in_file,
                      state, memory.peak_kib, idle, stage_timings(stack.settings, result.image_id))


def stage_timings(settings: Settings, image_id: str) -> dict[str, float]:
    """The worker's own milliseconds per analysis stage, as it recorded them."""
    engine = create_engine(settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            timings = connection.scalar(select(Analysis.stage_timings_ms).where(Analysis.image_id == image_id))
    finally:
        engine.dispose()
    return dict(timings or {})


def bare_detector_seconds(detector: Detector, data: bytes, indices: list[int]) -> float:
    """The detector's pixel model on the given frames of the clip, decoded beforehand (not timed), one at a time."""
    clip = probe_video(data, "video/mp4")
    pictures = [f.picture for f in VideoFrames(data, clip, clip.frame_count).frames(set(indices)) if f.picture]
    assert len(pictures) == len(indices), (len(pictures), len(indices))
    detector.pixel_model.run(pictures[0])  # warm-up
    started = time.perf_counter()
    for picture in pictures:
        detector.pixel_model.run(picture)
    return time.perf_counter() - started


def decoding_seconds(clip: bytes | str, threads: int) -> float:
    """Every frame of the clip (its bytes or its path) decoded by PyAV and dropped, on `threads` threads (frame
    and slice threading)."""
    started = time.perf_counter()
    with av.open(clip if isinstance(clip, str) else io.BytesIO(clip)) as box:
        stream = box.streams.video[0]
        stream.thread_count = threads
        stream.thread_type = "AUTO"
        for _ in box.decode(stream):
            pass
    return time.perf_counter() - started


class NoModel:
    """Stands in for the pixel model, so that the timeline's pass is timed without it."""

    def run(self, picture: Image.Image) -> PixelReading | None:
        return None


def pass_seconds(data: bytes, policy: SamplingPolicy) -> float:
    """The timeline's one pass as the worker runs it (every frame decoded, thumbnails, the frames read made RGB),
    with the model left out."""
    clip = probe_video(data, "video/mp4")
    started = time.perf_counter()
    read_timeline(VideoFrames(data, clip, clip.frame_count), NoModel(), 0.5, policy,  # type: ignore[arg-type]
                  lambda done, total: None)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pool", type=Path, default=Path("../shared/data/detector"),
                        help="the detector's training pool (its pinned test split's real photos make the clips)")
    parser.add_argument("--clips", default=",".join(CLIPS), help=f"clips to measure ({', '.join(CLIPS)})")
    add_stack_arguments(parser)
    args = parser.parse_args()
    photos = real_photos(args.pool)
    rows, profile, passes = [], [], []
    for key in args.clips.split(","):
        spec = CLIPS[key]
        began = time.perf_counter()
        data = camera_clip(spec, photos)
        print(f"{spec.name}: {len(data) / MIB:.1f} MiB made in {time.perf_counter() - began:.0f} s", flush=True)
        with pixelcheck_stack(args, workers=1) as stack:
            detector = load_detector(DEFAULT_MODEL_DIR, max_frames=stack.settings.animation_analysed_frames,
                                     max_decoded_frames=stack.settings.video_max_frames)  # as bootstrap does
            policy = SamplingPolicy(max_frames=stack.settings.animation_analysed_frames)
            run = through_service(stack, data, f"{key}.mp4")
        bare = bare_detector_seconds(detector, data, run.frame_indices)
        rows.append([spec.name, f"{len(data) / MIB:.1f} MiB at {spec.bit_rate / 1e6:g} Mb/s", run.state,
                     str(run.frames_in_file), str(len(run.frame_indices)), f"{run.upload_s:.1f}",
                     f"{run.verdict_s:.1f}", f"{bare:.1f}",
                     f"{run.verdict_s / bare:.2f}x", f"{run.idle_rss_kib / 1024:.0f} -> {run.peak_rss_kib / 1024:.0f}"])
        stages = [run.stage_ms.get(stage, 0.0) / 1000 for stage in STAGES]
        profile.append([spec.name, f"{run.verdict_s - sum(stages):.1f}", *(f"{s:.1f}" for s in stages), f"{bare:.1f}"])
        one_pass = pass_seconds(data, policy)
        passes.append([spec.name, str(run.frames_in_file), f"{decoding_seconds(data, 1):.1f}",
                       f"{decoding_seconds(data, 2):.1f}", f"{one_pass:.1f}", f"{bare:.1f}", f"{one_pass + bare:.1f}"])
    print_table(f"Video clips, upload -> clip verdict on one worker (solo pool) vs the bare detector's pixel model on "
                f"the same frames (target <= {RATIO_TARGET}x, worker peak RSS <= {MEMORY_TARGET_MIB} MiB)",
                ["clip", "size", "result", "frames decoded (one pass: each frame once)", "frames read",
                 "upload s", "upload -> verdict s", "bare detector on those frames s", "ratio",
                 "worker RSS idle -> peak MiB"],
                rows)
    print_table("Where the time went (s; the worker's own stage timings): DECODING is the blob read and the clip's "
                "probe, PROVENANCE its C2PA manifest and container tags, PIXEL_MODEL the timeline's one pass: every "
                "frame decoded to a grey 32x32 thumbnail, the frames read made RGB and judged by the model as they "
                "are chosen (the first also searched for watermarks)",
                ["clip", "upload, queue, events", "decoding", "provenance", "pixel model", "fusion", "saving",
                 "bare detector on the frames read"], profile)
    print_table("The pass without the service, in this process (s): PyAV decoding every frame and nothing else, on "
                "1 thread (as the worker) and on 2 (frame threading, for information only); the timeline's pass "
                "with the model left out (decoding, thumbnails, RGB of the frames read); the model on the frames read",
                ["clip", "frames", "decoding alone, 1 thread", "decoding alone, 2 threads", "pass without the model",
                 "model on the frames read", "pass + model"], passes)


if __name__ == "__main__":
    main()
