"""Training material: a folder of `ai/` and `real/` images, optionally described by a MANIFEST.csv.

With a manifest (class, group, file, source_file) crops of one source image stay together; without
one, every image is its own source and its group is the first sub-folder below `ai/` or `real/`
(or the class name when images sit directly in it).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


@dataclass(frozen=True)
class Sample:
    path: Path
    is_ai: bool
    group: str
    source: str  # crops sharing a source must share a split


def load_samples(root: Path) -> list[Sample]:
    """Every usable image below root/ai and root/real, sorted for reproducibility."""
    manifest = root / "MANIFEST.csv"
    samples: list[Sample] = []
    if manifest.is_file():
        with manifest.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                path = root / row["class"] / row["file"]
                if path.is_file():
                    is_ai = row["class"] == "ai"
                    samples.append(Sample(path, is_ai, row["group"], f"{row['group']}/{row['source_file']}"))
    else:
        for class_name in ("ai", "real"):
            base = root / class_name
            for path in sorted(base.rglob("*")):
                if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                    continue
                relative = path.relative_to(base)
                group = relative.parts[0] if len(relative.parts) > 1 else class_name
                samples.append(Sample(path, class_name == "ai", group, f"{class_name}/{relative}"))
    if not samples:
        raise ValueError(f"no images found under {root}/ai and {root}/real")
    return sorted(samples, key=lambda s: str(s.path))


def data_digest(samples: list[Sample]) -> str:
    """sha256 over every file's name, label, group and content: identifies the exact training data."""
    digest = hashlib.sha256()
    for sample in samples:
        digest.update(f"{sample.path.name}|{int(sample.is_ai)}|{sample.group}|".encode())
        digest.update(hashlib.sha256(sample.path.read_bytes()).digest())
    return digest.hexdigest()


# Photogrammetry sets: many views of one scene, so a whole group is one unit of the split.
MULTI_VIEW_GROUPS = frozenset(
    {
        "strecha-mvs",
        "sceaux-castle",
        "alicevision-monstree",
        "alicevision-buddha",
        "opensfm-lund",
        "drone-brighton-beach",
    }
)
# The SD.Next model-samples gallery renders one fixed prompt set with every model: a prompt is one unit.
SHARED_PROMPT_MARK = "vladmandic__sd-samples__"
SPLIT_NAMES = ("train", "validation", "test")


def shared_prompt(sample: Sample) -> str | None:
    """The prompt of an SD.Next gallery image (the last `_` part of its source stem), else None."""
    if SHARED_PROMPT_MARK not in sample.source:
        return None
    return Path(sample.source).stem.rsplit("_", 1)[-1].lower()


def split_unit(sample: Sample) -> tuple[str, str]:
    """(pool, unit) the split assigns as a whole: a source image; a whole multi-view group; an SD.Next prompt."""
    if sample.group in MULTI_VIEW_GROUPS:
        return "multi-view", sample.group
    prompt = shared_prompt(sample)
    if prompt is not None:
        return "shared-prompt-gallery", prompt
    return sample.group, sample.source


def split_by_source(
    samples: list[Sample],
    seed: int,
    fractions: tuple[float, float] = (0.15, 0.15),
    pinned: dict[str, int] | None = None,
) -> np.ndarray:
    """Assign each sample to 0=train, 1=validation, 2=test so that no unit (see split_unit) spans two splits.

    `pinned` maps file names to the split an earlier model's artifact gave them (its validation and test
    files): a unit holding any pinned file goes where that file went (test before validation when a unit
    holds both), so two model versions are measured on the same held-out images. The other units are
    shuffled within their pool (a group, or the multi-view / shared-prompt pools) and split by `fractions`,
    so every group is represented in every split it can be.
    """
    rng = np.random.default_rng(seed)
    pinned = pinned or {}
    by_pool: dict[str, set[str]] = {}
    assignment: dict[tuple[str, str], int] = {}
    for sample in samples:
        key = split_unit(sample)
        if sample.path.name in pinned:
            assignment[key] = max(assignment.get(key, 0), pinned[sample.path.name])
    for sample in samples:
        pool, unit = split_unit(sample)
        if (pool, unit) not in assignment:
            by_pool.setdefault(pool, set()).add(unit)
    for pool in sorted(by_pool):
        units = sorted(by_pool[pool])
        rng.shuffle(units)
        n_val = int(round(len(units) * fractions[0]))
        n_test = int(round(len(units) * fractions[1]))
        for index, unit in enumerate(units):
            assignment[(pool, unit)] = 1 if index < n_val else 2 if index < n_val + n_test else 0
    return np.array([assignment[split_unit(s)] for s in samples], dtype=np.int8)


# What the pool's fourth release added (SOURCE.md): whole new groups, and new sources inside older groups.
# The 2.0 model's split file lists only its validation and test files; its training files are the rest
# of the pool before these additions.
FOURTH_RELEASE_GROUPS = frozenset(
    {
        "gpt-4o-image",
        "gemini-2.5-flash-image",
        "flux-1",
        "ideogram",
        "imagen-3",
        "real-text",
        "real-events",
        "real-product",
        "real-phone",
    }
)
FOURTH_RELEASE_SOURCES = (
    "__ZizheRuan__awesome-nano-banana-pro",
    "__vtomnet__vtomnet.github.io",
    "__75py__blog",
    "__hanisntsolo__hanisntsolo",
    "__vipshop__cache-dit",
    "__jyoung105__cog-diffusers",
    "__Visionatrix__VixFlowsDocs",
)


class SplitMismatch(ValueError):
    """The pool does not reproduce the previous model's pinned split."""


def is_fourth_release_addition(sample: Sample) -> bool:
    """True for files the pool's fourth release added."""
    return sample.group in FOURTH_RELEASE_GROUPS or any(mark in sample.path.name for mark in FOURTH_RELEASE_SOURCES)


def pinned_assignment(split_file: Path, samples: list[Sample], seed: int) -> dict[str, int]:
    """{file name: 0 train, 1 validation, 2 test} of the previous model, to keep in the new split.

    A split file that lists its training files is taken as it is. One that lists only validation and
    test (2.0) is rebuilt: the pool without the fourth release's additions, split by the same rule and
    seed, must give exactly the pinned validation and test files, else SplitMismatch.
    """
    import json

    pinned = json.loads(split_file.read_text(encoding="utf-8"))
    if "train" in pinned:
        return {name: number for number, part in enumerate(SPLIT_NAMES) for name in pinned.get(part, {})}
    earlier = [s for s in samples if not is_fourth_release_addition(s)]
    rebuilt = split_by_source(earlier, seed)
    assignment = {s.path.name: int(part) for s, part in zip(earlier, rebuilt, strict=True)}
    for number, part in ((1, "validation"), (2, "test")):
        got = {name for name, value in assignment.items() if value == number}
        if got != set(pinned.get(part, {})):
            raise SplitMismatch(
                f"the pool without the fourth release does not reproduce {split_file}'s {part} split "
                f"({len(got ^ set(pinned.get(part, {})))} files differ)"
            )
    return assignment
