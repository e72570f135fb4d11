"""Scoring a folder of labelled images through the Detector, exactly as the service scores uploads.

`scripts/eval-detector DIR` (a thin wrapper around main()) reads DIR/ai and DIR/real (sub-folders are
groups; a MANIFEST.csv as in the training pool names groups too), sends every file's bytes through
Detector.analyze() — provenance, pixel model and fusion — and reports accuracy, ROC AUC, ECE,
accuracy per group and per confidence band, then the same after re-encoding every file as JPEG q95
without metadata (what a sharing platform does), and optionally after JPEG q70 / half size / blur σ1.
With `--split test` (or validation) DIR is the training pool and only the files pinned in the model
artifact's evaluation split are scored, each checked against its recorded sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from pixelcheck.analysis.detector.detector import DEFAULT_MODEL_DIR, Detector, load_detector
from pixelcheck.analysis.detector.image_facts import decode_rgb, open_image
from pixelcheck.analysis.detector.verdict import Band, Label

SPLIT_FILE = "evaluation_split.json"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


class EvaluationError(Exception):
    """The folder or the pinned split cannot be evaluated as asked (the message says why)."""


@dataclass(frozen=True)
class Item:
    path: Path
    is_ai: bool
    group: str


@dataclass(frozen=True)
class Scored:
    item: Item
    prob_ai: float
    label: Label
    band: Band

    @property
    def correct(self) -> bool:
        return (self.label is Label.AI) == self.item.is_ai


def _reencode(rgb: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=quality)  # Pillow writes no metadata unless asked
    return buffer.getvalue()


def _decoded(data: bytes) -> Image.Image:
    return decode_rgb(open_image(data))


# Every variant maps the original file's bytes to the bytes that are scored.
VARIANTS: dict[str, Callable[[bytes], bytes]] = {
    "original": lambda data: data,
    "jpeg_q95_no_metadata": lambda data: _reencode(_decoded(data), 95),
}
ROBUSTNESS_VARIANTS: dict[str, Callable[[bytes], bytes]] = {
    "jpeg_q70": lambda data: _reencode(_decoded(data), 70),
    "half_size": lambda data: _reencode(
        (rgb := _decoded(data)).resize((max(1, rgb.width // 2), max(1, rgb.height // 2)), Image.Resampling.BICUBIC),
        95,
    ),
    "blur_sigma1": lambda data: _reencode(_decoded(data).filter(ImageFilter.GaussianBlur(radius=1.0)), 95),
}


def folder_items(root: Path) -> list[Item]:
    """Every image below root/ai and root/real; group = MANIFEST.csv group, else the first sub-folder."""
    import csv

    groups: dict[str, str] = {}
    manifest = root / "MANIFEST.csv"
    if manifest.is_file():
        with manifest.open(newline="", encoding="utf-8") as handle:
            groups = {f"{row['class']}/{row['file']}": row["group"] for row in csv.DictReader(handle)}
    items = []
    for class_name in ("ai", "real"):
        base = root / class_name
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            relative = path.relative_to(base)
            fallback = f"{class_name}/{relative.parts[0]}" if len(relative.parts) > 1 else class_name
            items.append(Item(path, class_name == "ai", groups.get(f"{class_name}/{relative}", fallback)))
    if not items:
        raise EvaluationError(f"no images found under {root}/ai and {root}/real")
    return items


def pinned_items(root: Path, model_dir: Path, split: str) -> list[Item]:
    """The files of the artifact's pinned split, found in the pool at root and checked by digest."""
    split_path = model_dir / SPLIT_FILE
    if not split_path.is_file():
        raise EvaluationError(f"{split_path} does not exist: this model pins no evaluation split")
    pinned = json.loads(split_path.read_text(encoding="utf-8"))
    if split not in pinned:
        raise EvaluationError(f"{split_path} pins no '{split}' split (it has {', '.join(sorted(pinned))})")
    by_name = {item.path.name: item for item in folder_items(root)}
    missing = [name for name in pinned[split] if name not in by_name]
    changed = [
        name
        for name, digest in pinned[split].items()
        if name in by_name and hashlib.sha256(by_name[name].path.read_bytes()).hexdigest() != digest
    ]
    if missing or changed:
        raise EvaluationError(
            f"the pool at {root} no longer holds the pinned {split} split: {len(missing)} files missing, "
            f"{len(changed)} changed (e.g. {(missing + changed)[0]})"
        )
    return [by_name[name] for name in sorted(pinned[split])]


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half); None with only one class."""
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if not positives or not negatives:
        return None
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    start = 0
    while start < len(scores):
        end = start
        while end + 1 < len(scores) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """ECE over equal-width bins of the confidence in the predicted label."""
    predicted = probabilities > 0.5
    confidence = np.where(predicted, probabilities, 1 - probabilities)
    correct = predicted == labels
    edges = np.linspace(0.5, 1.0, bins + 1)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence >= low) & ((confidence < high) | (high == 1.0))
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(error)


def summarise(scored: Sequence[Scored]) -> dict[str, Any]:
    """Accuracy, ROC AUC, ECE, per-group and per-band numbers of one scoring pass."""
    probabilities = np.array([s.prob_ai for s in scored])
    labels = np.array([s.item.is_ai for s in scored])
    correct = np.array([s.correct for s in scored])
    groups: dict[str, list[bool]] = {}
    for s in scored:
        groups.setdefault(s.item.group, []).append(s.correct)
    bands = {}
    for band in Band:
        inside = [s.correct for s in scored if s.band is band]
        bands[band.value] = {
            "share": round(len(inside) / len(scored), 4),
            "n": len(inside),
            "accuracy": round(float(np.mean(inside)), 4) if inside else None,
        }
    auc = roc_auc(probabilities, labels)
    return {
        "n": len(scored),
        "accuracy": round(float(correct.mean()), 4),
        "roc_auc": round(auc, 4) if auc is not None else None,
        "ece": round(expected_calibration_error(probabilities, labels), 4),
        "ai_recall": round(float(correct[labels].mean()), 4) if labels.any() else None,
        "real_accuracy": round(float(correct[~labels].mean()), 4) if (~labels).any() else None,
        "per_group": {g: {"n": len(v), "accuracy": round(float(np.mean(v)), 4)} for g, v in sorted(groups.items())},
        "per_band": bands,
        "most_confidently_wrong": [
            {"file": s.item.path.name, "group": s.item.group, "prob_ai": round(s.prob_ai, 4), "band": s.band.value}
            for s in sorted((s for s in scored if not s.correct), key=lambda s: -abs(s.prob_ai - 0.5))[:5]
        ],
    }


def score(detector: Detector, items: Sequence[Item], variant: Callable[[bytes], bytes], threads: int) -> list[Scored]:
    """Every item's file, transformed by variant, through Detector.analyze()."""

    def one(item: Item) -> Scored:
        verdict = detector.analyze(variant(item.path.read_bytes()))
        return Scored(item, verdict.prob_ai, verdict.label, verdict.band)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return list(pool.map(one, items))


def evaluate(
    detector: Detector, items: Sequence[Item], *, robustness: bool, threads: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """{variant name: summary} for the original files, JPEG q95 re-encodes and optionally the robustness set."""
    variants = {**VARIANTS, **(ROBUSTNESS_VARIANTS if robustness else {})}
    results = {}
    for name, variant in variants.items():
        results[name] = summarise(score(detector, items, variant, threads))
        log(render(name, results[name]))
    return results


def render(name: str, summary: dict[str, Any]) -> str:
    """A plain-text report of one summary."""
    lines = [
        f"== {name}: {summary['n']} images  accuracy {summary['accuracy']:.4f}  ROC AUC {summary['roc_auc']}  "
        f"ECE {summary['ece']:.4f}  AI recall {summary['ai_recall']}  real accuracy {summary['real_accuracy']}",
        "  per band:  "
        + "  ".join(
            f"{band} {v['share']:.1%} of images, {v['accuracy'] if v['accuracy'] is not None else '-'} right"
            for band, v in summary["per_band"].items()
        ),
        "  per group:",
    ]
    lines += [f"    {group:<34} {v['n']:>5}  {v['accuracy']:.3f}" for group, v in summary["per_group"].items()]
    lines.append("  most confidently wrong:")
    lines += [
        f"    {w['prob_ai']:.3f} {w['band']:<6} {w['group']:<24} {w['file']}" for w in summary["most_confidently_wrong"]
    ]
    return "\n".join(lines)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of scripts/eval-detector."""
    parser = argparse.ArgumentParser(
        description="Score a folder of ai/ and real/ images through the detector, as the service does."
    )
    parser.add_argument("folder", type=Path, help="folder with ai/ and real/ (sub-folders = groups)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="model artifact folder")
    parser.add_argument(
        "--split",
        choices=("test", "validation"),
        help="score only the model's pinned split of the training pool in FOLDER",
    )
    parser.add_argument("--robustness", action="store_true", help="also after JPEG q70, half size and blur σ1")
    parser.add_argument("--threads", type=int, default=1, help="images analysed at once (one core each)")
    parser.add_argument("--json", type=Path, help="also write every number to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of scripts/eval-detector."""
    args = parse_arguments(argv)
    try:
        items = pinned_items(args.folder, args.model, args.split) if args.split else folder_items(args.folder)
    except EvaluationError as error:
        print(f"eval-detector: {error}", file=sys.stderr)
        return 2
    detector = load_detector(args.model)
    print(
        f"model {detector.model_version}: {len(items)} images "
        f"({sum(i.is_ai for i in items)} AI) from {args.folder}{f' (pinned {args.split} split)' if args.split else ''}",
        flush=True,
    )
    results = evaluate(
        detector, items, robustness=args.robustness, threads=args.threads, log=lambda text: print(text, flush=True)
    )
    if args.json:
        args.json.write_text(json.dumps({"model": detector.model_version, **results}, indent=2) + "\n")
    return 0
