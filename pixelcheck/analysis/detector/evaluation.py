"""Scoring a folder of labelled images through the Detector, exactly as the service scores uploads.

`scripts/eval-detector DIR` (a thin wrapper around main()) reads DIR/ai and DIR/real (sub-folders are
groups; a MANIFEST.csv as in the training pool names groups too), sends every file's bytes through
Detector.analyze() — provenance, pixel model and fusion — and reports accuracy, ROC AUC, ECE,
accuracy per group and per confidence band, then the same after re-encoding every file as JPEG q95
without metadata (what a sharing platform does), and optionally after JPEG q70 / half size / blur σ1, as short
animations and as short video clips (the variants are in evaluation_variants, the printed reports in
evaluation_report).
With `--split test` (or validation) DIR is the training pool and only the files pinned in the model
artifact's evaluation split are scored, each checked against its recorded sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelcheck.analysis.detector.artifact import VIDEO_CARD
from pixelcheck.analysis.detector.detector import DEFAULT_MODEL_DIR, Detector, load_detector
from pixelcheck.analysis.detector.evaluation_report import comparison, group_drops, render, video_card
from pixelcheck.analysis.detector.evaluation_variants import (
    ANIMATION_VARIANTS,
    ROBUSTNESS_VARIANTS,
    VARIANTS,
    VIDEO_VARIANTS,
    Variant,
    decoded,
)
from pixelcheck.analysis.detector.regions import region_grid
from pixelcheck.analysis.detector.training.families import family_of
from pixelcheck.analysis.detector.training.model_card import model_card
from pixelcheck.analysis.detector.verdict import Band, Label, Verdict

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
    family: str = ""  # the family head's top family (named or not) for AI verdicts
    family_named: bool = False  # the verdict named it (not "unknown family")
    stable: bool = True

    @property
    def correct(self) -> bool:
        return (self.label is Label.AI) == self.item.is_ai


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
    return binned_calibration_error(confidence, predicted == labels, np.linspace(0.5, 1.0, bins + 1))


def binned_calibration_error(confidence: np.ndarray, correct: np.ndarray, edges: np.ndarray) -> float:
    """Σ over the bins between `edges` of (share of predictions in the bin) × |accuracy − mean confidence|."""
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
        "n_ai": int(labels.sum()),
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


def _scored(item: Item, verdict: Verdict) -> Scored:
    family = verdict.generator_family
    top = "" if family is None else family.runner_up if family.unknown else family.family
    stable = verdict.stability is None or verdict.stability.stable
    return Scored(item, verdict.prob_ai, verdict.label, verdict.band, top, family is not None and not family.unknown,
                  stable)


def score(detector: Detector, items: Sequence[Item], variant: Variant, threads: int) -> list[Scored]:
    """Every item's file, transformed by variant, through Detector.analyze()."""

    def one(item: Item) -> Scored:
        return _scored(item, detector.analyze(variant(item.path.read_bytes())))

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return list(pool.map(one, items))


def families_and_card(scored: Sequence[Scored]) -> dict[str, Any]:
    """Family top-1 on the AI images (per family too), and the model card (false positives per kind of real
    photo, catch rate per family). Only meaningful for groups named as in the training pool."""
    ai = [s for s in scored if s.item.is_ai]
    per_family: dict[str, list[tuple[bool, bool]]] = {}
    for s in ai:
        right = s.label is Label.AI and s.family == family_of(s.item.group)
        per_family.setdefault(family_of(s.item.group), []).append((right, right and s.family_named))
    summary = {
        family: {"n": len(v), "top1": round(float(np.mean([r for r, _ in v])), 4),
                 "named_right": round(float(np.mean([n for _, n in v])), 4)}
        for family, v in sorted(per_family.items())
    }
    called = [s for s in ai if s.label is Label.AI]
    card = model_card(np.array([s.item.group for s in scored]), np.array([s.item.is_ai for s in scored]),
                      np.array([s.label is Label.AI for s in scored]))
    return {
        "family_top1_of_ai_verdicts": round(float(np.mean([s.family == family_of(s.item.group) for s in called])), 4)
        if called else None,
        "family_per_family": summary,
        "model_card": card,
    }


def flips(original: Sequence[Scored], copy: Sequence[Scored]) -> dict[str, Any]:
    """Share of images whose label changes from the original to the copy, overall and among HIGH verdicts."""
    changed = [a.label is not b.label for a, b in zip(original, copy, strict=True)]
    high = [c for a, c in zip(original, changed, strict=True) if a.band is Band.HIGH]
    return {
        "label_flips": round(float(np.mean(changed)), 4),
        "label_flips_of_high_verdicts": round(float(np.mean(high)), 4) if high else None,
        "high_verdicts": len(high),
        "marked_unstable_in_original": round(float(np.mean([not a.stable for a in original])), 4),
    }


def region_agreement(detector: Detector, items: Sequence[Item], threads: int) -> dict[str, Any]:
    """Share of region-map regions on the side of the image's true label, for AI and for real images, and on
    the side of the image's own verdict."""

    def one(item: Item) -> tuple[float, float] | None:
        data = item.path.read_bytes()
        rgb = decoded(data)
        grid = region_grid(rgb.width, rgb.height)
        if grid is None:
            return None
        sides = np.array(detector.score_regions(rgb, list(grid.boxes))) >= 0.5
        return float(np.mean(sides == item.is_ai)), float(np.mean(sides == (detector.analyze(data).label is Label.AI)))

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        shares = list(pool.map(one, items))
    ai = [s[0] for s, i in zip(shares, items, strict=True) if s is not None and i.is_ai]
    real = [s[0] for s, i in zip(shares, items, strict=True) if s is not None and not i.is_ai]
    verdict = [s[1] for s in shares if s is not None]
    return {
        "ai_regions_on_ai_side": round(float(np.mean(ai)), 4) if ai else None,
        "real_regions_on_real_side": round(float(np.mean(real)), 4) if real else None,
        "regions_on_the_verdicts_side": round(float(np.mean(verdict)), 4) if verdict else None,
        "images_with_a_map": len(ai) + len(real),
    }


def evaluate(
    detector: Detector,
    items: Sequence[Item],
    *,
    robustness: bool,
    threads: int,
    animations: bool = False,
    videos: bool = False,
    log: Callable[[str], None],
    only: Sequence[str] = (),
) -> dict[str, Any]:
    """{variant name: summary} for the original files, JPEG q95 re-encodes and optionally the robustness set
    (with label flips to the messaging-app copy and region agreement), each picture as a short animated GIF
    and WebP, and as a short video clip in H.264, HEVC and VP9 at phone and social bitrates (animations and
    clips judged frame by frame, as the service judges them), plus families and the model card.
    Animations and clips also get "group_drops:<variant>": the groups whose accuracy falls most from the original.
    `only` limits the passes to these variants (the original is always scored)."""
    variants = {**VARIANTS, **(ROBUSTNESS_VARIANTS if robustness else {}), **(ANIMATION_VARIANTS if animations else {}),
                **(VIDEO_VARIANTS if videos else {})}
    if only:
        variants = {name: v for name, v in variants.items() if name == "original" or name in only}
    results: dict[str, Any] = {}
    passes = {}
    for name, variant in variants.items():
        passes[name] = score(detector, items, variant, threads)
        results[name] = summarise(passes[name])
        log(render(name, results[name]))
        if name in ANIMATION_VARIANTS or name in VIDEO_VARIANTS:
            results[f"group_drops:{name}"] = group_drops(results["original"], results[name])
            log(f"  biggest drops per group from the original: {json.dumps(results[f'group_drops:{name}'])}")
    results["families_and_model_card"] = families_and_card(passes["original"])
    log("families and model card: " + json.dumps(results["families_and_model_card"]))
    if "social_copy" in passes:
        results["social_copy_flips"] = flips(passes["original"], passes["social_copy"])
        results["region_agreement"] = region_agreement(detector, items, threads)
        log("social copy flips: " + json.dumps(results["social_copy_flips"]))
        log("region agreement: " + json.dumps(results["region_agreement"]))
    log(comparison(results, list(variants)))
    return results


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
    parser.add_argument(
        "--split-from",
        type=Path,
        help="take the pinned split from this artifact folder instead of --model's (compare two models on one split)",
    )
    parser.add_argument(
        "--robustness",
        action="store_true",
        help="also after JPEG q70, half size, blur σ1 and a messaging-app copy (label flips, region agreement)",
    )
    parser.add_argument(
        "--animations",
        action="store_true",
        help="also each picture as a 3-frame animated GIF and animated WebP q80, judged frame by frame",
    )
    parser.add_argument(
        "--videos",
        action="store_true",
        help="also each picture as a 3-frame 1.5 s clip in H.264 (phone and social bitrates), HEVC (phone) and VP9 "
        "(web), judged frame by frame",
    )
    parser.add_argument(
        "--only",
        help="comma-separated variants to score besides the original (e.g. social_copy,jpeg_q70)",
    )
    parser.add_argument(
        "--card",
        action="store_true",
        help="with --videos and --split test: write the clips' numbers into the model's card (MODEL/video_card.json)",
    )
    parser.add_argument("--threads", type=int, default=1, help="images analysed at once (one core each)")
    parser.add_argument("--json", type=Path, help="also write every number to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of scripts/eval-detector."""
    args = parse_arguments(argv)
    if args.card and not (args.videos and args.split == "test"):
        print("eval-detector: --card needs --videos and --split test (the model card speaks of its test split)",
              file=sys.stderr)
        return 2
    try:
        split_dir = args.split_from or args.model
        items = pinned_items(args.folder, split_dir, args.split) if args.split else folder_items(args.folder)
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
        detector,
        items,
        robustness=args.robustness,
        threads=args.threads,
        animations=args.animations,
        videos=args.videos,
        log=lambda text: print(text, flush=True),
        only=tuple(args.only.split(",")) if args.only else (),
    )
    if args.json:
        args.json.write_text(json.dumps({"model": detector.model_version, **results}, indent=2) + "\n")
    if args.card:
        only = f" --only {args.only}" if args.only else ""
        command = f"scripts/eval-detector DATA --split test --videos --card{only} ({time.strftime('%Y-%m-%d')})"
        card = video_card(results, detector.model_version, command)
        (args.model / VIDEO_CARD).write_text(json.dumps(card, indent=2) + "\n")
        print(f"wrote {args.model / VIDEO_CARD}", flush=True)
    return 0
