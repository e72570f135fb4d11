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


def split_by_source(samples: list[Sample], seed: int, fractions: tuple[float, float] = (0.15, 0.15)) -> np.ndarray:
    """Assign each sample to 0=train, 1=validation, 2=test so that no unit (see split_unit) spans two splits.

    Units are shuffled within their pool (a group, or the multi-view / shared-prompt pools), so every
    group is represented in every split it can be.
    """
    rng = np.random.default_rng(seed)
    by_pool: dict[str, set[str]] = {}
    for sample in samples:
        pool, unit = split_unit(sample)
        by_pool.setdefault(pool, set()).add(unit)
    assignment: dict[tuple[str, str], int] = {}
    for pool in sorted(by_pool):
        units = sorted(by_pool[pool])
        rng.shuffle(units)
        n_val = int(round(len(units) * fractions[0]))
        n_test = int(round(len(units) * fractions[1]))
        for index, unit in enumerate(units):
            assignment[(pool, unit)] = 1 if index < n_val else 2 if index < n_val + n_test else 0
    return np.array([assignment[split_unit(s)] for s in samples], dtype=np.int8)
