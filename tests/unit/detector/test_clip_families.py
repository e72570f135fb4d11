"""A clip's generator family: the frames' family readings averaged, each frame weighted by its P(AI), through the
same honest "unknown" bar as a still picture's."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from pixelcheck.analysis.detector import DEFAULT_MODEL_DIR, Label, load_detector
from pixelcheck.analysis.detector.fusion import family_of
from pixelcheck.analysis.detector.pixel_model import FamilyReading, PixelReading
from pixelcheck.analysis.detector.timeline import clip_families, clip_reading
from tests import videos

NAMES = {"gpt": "GPT-4o", "flux": "FLUX", "sd": "Stable Diffusion"}


def frame(prob_ai: float, **families: float) -> PixelReading:
    ranked = tuple(sorted(((f, NAMES[f], p) for f, p in families.items()), key=lambda item: -item[2]))
    return PixelReading(prob_ai=prob_ai, crop_logits=(0.0,), agreement=1.0,
                        families=FamilyReading(ranked, unknown_below=0.5) if ranked else None)


def test_frames_that_read_as_generated_name_the_clips_family() -> None:
    readings = [frame(0.9, gpt=0.8, flux=0.15, sd=0.05)] * 4 + [frame(0.05, flux=0.9, gpt=0.05, sd=0.05)] * 4
    family = clip_families(readings)
    assert family is not None and family.ranked[0][0] == "gpt"  # the camera-like frames barely count
    assert abs(sum(p for _, _, p in family.ranked) - 1.0) < 1e-9
    assert family.unknown_below == 0.5


def test_frames_that_disagree_on_the_generator_leave_the_family_unknown() -> None:
    readings = [frame(0.9, gpt=0.7, flux=0.2, sd=0.1), frame(0.9, flux=0.7, gpt=0.2, sd=0.1)]
    reading = clip_reading(readings)
    assert reading is not None and reading.families is not None
    family = family_of(reading, Label.AI, "clip")
    assert family is not None and family.unknown and family.explanation.endswith(
        "the clip may come from a generator the model was not trained on.")


def test_frames_without_a_family_reading_give_the_clip_none() -> None:
    assert clip_families([frame(0.9), frame(0.8)]) is None
    assert clip_reading([frame(0.9), frame(0.8)]).families is None  # type: ignore[union-attr]


def test_a_clip_of_generated_pictures_read_as_ai_names_a_family_like_a_still_would(
        shared_file: Callable[[str], Path]) -> None:
    root = shared_file("data/detector")
    detector = load_detector(DEFAULT_MODEL_DIR)
    pinned = sorted(json.loads((DEFAULT_MODEL_DIR / "evaluation_split.json").read_text())["test"])
    families = json.loads((DEFAULT_MODEL_DIR / "metadata.json").read_text())["families"]["ids"]
    stills = []
    for name in pinned:
        path = next(root.glob(f"*/{name}"))
        if detector.analyze(path.read_bytes()).label is Label.AI:
            stills.append(np.asarray(Image.open(path).convert("RGB").resize((256, 256))))
        if len(stills) == 4:
            break
    pictures = [still for still in stills for _ in range(10)]  # 4 scenes of 1 s each at 10 fps
    verdict = detector.analyze(videos.clip(pictures=pictures, fps=10, crf=12))
    assert verdict.timeline is not None and verdict.timeline.media_kind == "VIDEO"
    assert verdict.label is Label.AI
    family = verdict.generator_family
    assert family is not None and family.explanation
    assert (family.family in families) != family.unknown and family.runner_up in families
