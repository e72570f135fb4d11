"""An animation's timeline: which frames the pixel model reads, how their readings make one clip reading, which
stretches read as generated, and the sentence that says so. Pure functions and a planner fed with the frames'
times; frames are read elsewhere.

Sampling policy: one frame per second of the timeline (the frame showing at 0 s, 1 s, 2 s ...), spaced wider
when the animation is longer than `max_frames` seconds so that the whole of it is covered; plus frames where
the picture changes strongly (scene cuts), the earliest first, in the room those grid points leave under
`max_frames`. The first frame is always read (it is the one showing at 0 s, or the first one that decodes).
SamplePlanner chooses while the frames are decoded, each once: a frame is known to show at a grid time when the
next frame's start arrives. The room for cuts is counted from the grid points the declared duration gives, so
when several grid points fall on one frame (frames longer than the spacing) or past the last frame that decodes,
fewer cuts may be read than a plan made after seeing every frame would read; otherwise the choice is the same.

Clip reading: the trimmed mean (a tenth cut off each end) of the frames' logits, log(p / (1 - p)) of their
calibrated P(AI). Calibration is affine in logits, so this is the calibrated trimmed mean of the network's frame
logits: one frame's glitch cannot carry the clip, while a clip that is generated throughout reads as one.
The clip reading then goes through the same fusion as a still picture's pixel reading.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from pixelcheck.analysis.detector.pixel_model import FamilyReading, PixelReading, sigmoid
from pixelcheck.analysis.detector.verdict import FrameVerdict, Label, Segment
from pixelcheck.animation_formats import PLAYED_FRAME_MS, SHORTEST_FRAME_MS

TRIMMED_SHARE = 0.1  # of the frame logits cut off each end before averaging


@dataclass(frozen=True)
class SamplingPolicy:
    max_frames: int = 60  # frames the pixel model reads, at most
    interval_ms: int = 1000  # one frame per this much of the timeline (widened for long animations)
    cut_difference: float = 32.0  # mean absolute difference (0-255) of 32x32 grey thumbnails that is a cut

    def interval_for(self, duration_ms: int) -> int:
        return max(self.interval_ms, math.ceil(duration_ms / self.max_frames))

    def grid_points(self, duration_ms: int) -> int:
        """How many grid times (0, interval, 2 x interval ... before the end) the timeline has: at most max_frames."""
        return len(range(0, max(duration_ms, 1), self.interval_for(duration_ms)))

    def describe(self, duration_ms: int, *, video: bool = False) -> str:
        """The policy as applied to one animation or clip, in words (stored with its result)."""
        room = self.max_frames - self.grid_points(duration_ms)
        cuts = (f"plus up to {room} frames where the picture changes strongly (scene cuts), the earliest first"
                if room else f"and no scene cuts (the timeline takes all {self.max_frames} frames)")
        policy = f"One frame per {self.interval_for(duration_ms) / 1000:g} s of the timeline, always the first, {cuts}."
        if video:
            return policy + " Frames are timed by their presentation timestamps in the clip."
        return (f"{policy} Frames declaring under {SHORTEST_FRAME_MS} ms are timed at {PLAYED_FRAME_MS} ms, as "
                "browsers play them.")


def moving_pictures_method(policy: SamplingPolicy) -> str:
    """The model card's words on how an animation's or a video clip's verdict is made, and what measures it."""
    every = policy.interval_ms / 1000
    frames = policy.max_frames
    return " ".join((
        f"An animated image or a video clip is judged on its frames: one frame per {every:g} s of its timeline",
        f"(wider apart past {frames * every:g} s, so that {frames} frames cover it all), always the first, plus",
        f"frames where the picture changes strongly (scene cuts), at most {frames} frames, each read by the pixel",
        "model as a still picture is. The clip's probability of AI is the trimmed mean of the frames' calibrated",
        f"logits ({TRIMMED_SHARE:.0%} cut off each end, so one odd frame cannot carry it), fused with the file's",
        "provenance (a video's container tags and C2PA manifest) as a still's is; stretches of frames read as AI",
        "make the segments. Sound is not analysed. Frame accuracy after video compression (video_compression) was",
        "measured on the held-out test pictures encoded as short clips; no clip from a video generator was",
        "measured.",
    ))


class Pick(Enum):
    """Why a frame is read."""

    GRID = "grid"  # it shows at a grid time, or stands in for an undecodable frame that does
    SCENE_CUT = "scene_cut"


class SamplePlanner:
    """The sampling policy decided frame by frame, in decoding order, so that a clip is decoded once.

    Every frame goes to choose() in order, which decides on it once the next frame's start is known: the grid
    times from the first one not yet taken up to that start show this frame. A grid frame that does not decode
    hands its grid times on to the next frame that does. Scene cuts are read, the earliest first, while fewer
    than max_frames minus the grid points have been (see the module's docstring)."""

    def __init__(self, duration_ms: int, policy: SamplingPolicy) -> None:
        self._interval = policy.interval_for(duration_ms)
        self._grid_end = max(duration_ms, 1)
        self._grid_points = policy.grid_points(duration_ms)
        self._cut_room = policy.max_frames - self._grid_points
        self._next_grid_ms = 0  # the first grid time no frame has taken yet
        self._waiting = 0  # grid times whose frames did not decode: the next frame that decodes is read for them
        self._merged = 0  # grid times known to share their frame with another grid time, or to have none
        self._cuts = 0

    @property
    def expected_frames(self) -> int:
        """The frames the plan reads, as far as it knows now: the grid points not known to share a frame plus the
        scene cuts chosen so far (progress's total: never below the frames chosen, exact after the last frame)."""
        return self._grid_points - self._merged + self._cuts

    def choose(self, readable: bool, cut: bool, next_start_ms: int | None) -> Pick | None:
        """Whether the frame after the last one decided on is read, and why (None: it is not). readable: it
        decoded; cut: it differs strongly from the last frame that decoded; next_start_ms: the next frame's start
        (starts never decrease), None when this frame is the last."""
        end = self._grid_end if next_start_ms is None else min(next_start_ms, self._grid_end)
        shown = max(0, -(-(end - self._next_grid_ms) // self._interval))  # grid times this frame shows at
        self._next_grid_ms += shown * self._interval
        pick = None
        if not readable:
            self._waiting += shown
        elif shown or self._waiting:
            self._merged += shown + self._waiting - 1
            self._waiting = 0
            pick = Pick.GRID
        elif cut and self._cuts < self._cut_room:
            self._cuts += 1
            pick = Pick.SCENE_CUT
        if next_start_ms is None:
            self._merged += self._waiting  # no frame after them decodes
            self._waiting = 0
        return pick


def frame_verdict(index: int, time_ms: int, prob_ai: float, threshold: float, scene_cut: bool) -> FrameVerdict:
    return FrameVerdict(index, time_ms, round(prob_ai, 4), Label.AI if prob_ai > threshold else Label.REAL,
                        scene_cut)


def trimmed_mean(values: Sequence[float], share: float = TRIMMED_SHARE) -> float:
    """The mean after cutting floor(share * n) values off each end."""
    ordered = sorted(values)
    cut = int(len(ordered) * share)
    kept = ordered[cut : len(ordered) - cut] or ordered
    return sum(kept) / len(kept)


def _logit(probability: float) -> float:
    clipped = min(max(probability, 1e-6), 1 - 1e-6)
    return math.log(clipped / (1 - clipped))


def clip_reading(readings: Sequence[PixelReading]) -> PixelReading | None:
    """One pixel reading for the whole animation from its frames' readings (see the module's docstring);
    None when no frame was large enough to judge. Its crop_logits are the frames' calibrated logits and its
    agreement the share of frames on the clip's side; crops are not compared across frames (crop_probs empty).
    Its generator families are those of clip_families."""
    if not readings:
        return None
    logits = [_logit(r.prob_ai) for r in readings]
    clip = trimmed_mean(logits)
    copies = [_logit(r.social_copy_prob_ai) for r in readings if r.social_copy_prob_ai is not None]
    agreement = sum((value > 0) == (clip > 0) for value in logits) / len(logits)
    return PixelReading(
        prob_ai=sigmoid(clip),
        crop_logits=tuple(logits),
        agreement=agreement,
        flat_share=statistics.median(r.flat_share for r in readings),
        social_copy_prob_ai=sigmoid(trimmed_mean(copies)) if copies else None,
        families=clip_families(readings),
    )


def clip_families(readings: Sequence[PixelReading]) -> FamilyReading | None:
    """The clip's generator families: each family's probability averaged over the frames, each frame weighted by
    its own P(AI), so the frames that read as generated say which generator (frames that read as camera footage
    say little about one). Frames that disagree spread the average, which then falls under the family head's
    "unknown" bar as one uncertain picture would. None when no frame has a family reading."""
    read = [r for r in readings if r.families is not None and r.families.ranked]
    weight = sum(r.prob_ai for r in read)
    if not read or weight <= 0:
        return None
    names: dict[str, str] = {}
    totals: dict[str, float] = {}
    for frame in read:
        assert frame.families is not None
        for family, name, probability in frame.families.ranked:
            names[family] = name
            totals[family] = totals.get(family, 0.0) + frame.prob_ai * probability
    ranked = sorted(((family, names[family], total / weight) for family, total in totals.items()),
                    key=lambda item: -item[2])
    return FamilyReading(tuple(ranked), read[0].families.unknown_below if read[0].families else 0.0)


def ai_segments(frames: Sequence[FrameVerdict], duration_ms: int) -> tuple[Segment, ...]:
    """The stretches whose sampled frames read AI. A sampled frame stands for the timeline from its own time to
    the next sampled frame's (the last one: to the end)."""
    segments: list[Segment] = []
    run: list[FrameVerdict] = []
    for position, frame in enumerate(frames):
        if frame.label is Label.AI:
            run.append(frame)
        if run and (frame.label is not Label.AI or position == len(frames) - 1):
            end = frames[position].time_ms if frame.label is not Label.AI else duration_ms
            segments.append(Segment(run[0].time_ms, max(end, run[0].time_ms), len(run),
                                    round(sum(f.prob_ai for f in run) / len(run), 4)))
            run = []
    return tuple(segments)


def clock(ms: int) -> str:
    """m:ss, with tenths when the time is not on a whole second: 0:04, 1:02.5."""
    minutes, seconds = divmod(ms / 1000, 60)
    whole = int(seconds)
    tenths = int(round((seconds - whole) * 10))
    if tenths == 10:
        whole, tenths = whole + 1, 0
    return f"{int(minutes)}:{whole:02d}" + (f".{tenths}" if tenths else "")


def timeline_summary(frames: Sequence[FrameVerdict], segments: Sequence[Segment], skipped: int, *,
                     video: bool = False) -> str:
    """The plain-language sentence about the timeline, e.g. "Frames 0:04–0:11 read as generated; the rest as
    camera footage." """
    if not frames:
        noun = "clip" if video else "animation"
        sentence = f"The {noun}'s frames are too small for the pixel-texture model to judge."
    elif not segments:
        sentence = f"None of the {len(frames)} frames read looks generated."
    elif sum(s.frame_count for s in segments) == len(frames):
        sentence = f"All {len(frames)} frames read look generated."
    else:
        spans = [f"{clock(s.start_ms)}–{clock(s.end_ms)}" for s in segments]
        listed = spans[0] if len(spans) == 1 else ", ".join(spans[:-1]) + " and " + spans[-1]
        sentence = f"Frames {listed} read as generated; the rest as camera footage."
    if skipped:
        plural = skipped != 1
        sentence += (f" {skipped} frame{'s' if plural else ''} could not be decoded and "
                     f"{'were' if plural else 'was'} skipped.")
    return sentence
