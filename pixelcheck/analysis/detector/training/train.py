"""Train, measure and package the pixel model: `scripts/train-detector --data DIR --out MODEL_DIR`.

Frozen EfficientNet-Lite0 features (backbone.py) of every image, computed once (features.py) → split by
source image, multi-view groups whole and the shared-prompt gallery by prompt (dataset.split_by_source)
→ a logistic-regression head on clean + randomly processed crops of the training split, balanced per
group, its regularisation chosen on validation → Platt calibration and band cut-offs on validation →
metrics on the held-out test split (clean, per group, under JPEG q70 / half size / blur σ1), reported
once → optional leave-one-generator-out and leave-one-real-source-out folds (`--logo`), each a refit of
the head → one ONNX file (backbone + head) and metadata.json, plus the pinned evaluation split.
Seeded end to end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pixelcheck.analysis.detector.artifact import sha256_of
from pixelcheck.analysis.detector.pixel_model import CROP_SIZE
from pixelcheck.analysis.detector.training import measures
from pixelcheck.analysis.detector.training.augment import ROBUSTNESS_TRANSFORMS
from pixelcheck.analysis.detector.training.dataset import (
    SPLIT_NAMES,
    Sample,
    data_digest,
    load_samples,
    shared_prompt,
    split_by_source,
)
from pixelcheck.analysis.detector.training.features import AUGMENTED_PER_IMAGE, export_backbone_onnx, extract
from pixelcheck.analysis.detector.training.head import Head, fit_head

RESEARCH_ONLY_NOTE = (
    "Trained on a pool of public images whose licences are mostly research-only or unstated "
    "(ImageNet terms, BSDS research use, generator galleries without a licence, photographers' and personal "
    "photo sites without a licence). For evaluation and demonstration only; retrain on data you hold the "
    "rights to before commercial use."
)
SPLIT_FILE = "evaluation_split.json"
FOLD_MIN_CROPS = 30  # leave-one-generator-out covers every AI group with at least this many crops
C_GRID = (0.0005, 0.001, 0.002, 0.005, 0.01)
SERVICE_CROPS = 4


def balanced_weights(samples: list[Sample], mask: np.ndarray) -> np.ndarray:
    """Per-image weights: each group's share grows with √size, and both classes weigh the same in total."""
    weights = np.zeros(len(samples))
    groups = np.array([s.group for s in samples])
    labels = np.array([s.is_ai for s in samples])
    for group in np.unique(groups[mask]):
        inside = mask & (groups == group)
        weights[inside] = 1.0 / np.sqrt(inside.sum())
    for label in (False, True):
        inside = mask & (labels == label)
        if inside.any():
            weights[inside] /= weights[inside].sum()
    return weights


class Pool:
    """Samples, labels, groups and cached features; fit() trains a head on any subset of images."""

    def __init__(self, samples: list[Sample], features: dict[str, np.ndarray], c: float, seed: int) -> None:
        self.samples = samples
        self.features = features
        self.labels = np.array([s.is_ai for s in samples])
        self.groups = np.array([s.group for s in samples])
        self.prompts = np.array([shared_prompt(s) or "" for s in samples])
        self.c = c
        self.seed = seed

    def fit(self, mask: np.ndarray, c: float | None = None) -> Head:
        """Head trained on the clean and augmented rows of the images selected by mask."""
        indices = np.where(mask)[0]
        weights = balanced_weights(self.samples, mask)[indices] / (1 + AUGMENTED_PER_IMAGE)
        rows = [self.features["clean"][indices]] + [
            self.features["augmented"][indices, k] for k in range(AUGMENTED_PER_IMAGE)
        ]
        features = np.concatenate(rows).astype(np.float64)
        labels = np.tile(self.labels[indices], 1 + AUGMENTED_PER_IMAGE)
        return fit_head(features, labels, np.tile(weights, 1 + AUGMENTED_PER_IMAGE), c or self.c, self.seed)

    def logits(self, head: Head, indices: np.ndarray, kind: str = "clean") -> np.ndarray:
        """Head logits of the clean features (or of one robustness transform) of these images."""
        if kind == "clean":
            return head.logits(self.features["clean"][indices].astype(np.float64))
        position = list(ROBUSTNESS_TRANSFORMS).index(kind)
        return head.logits(self.features["robustness"][indices, position].astype(np.float64))


def choose_c(pool: Pool, split: np.ndarray, log: Callable[[str], None]) -> tuple[float, list[dict[str, float]]]:
    """The regularisation with the lowest group-balanced log loss on validation."""
    val = np.where(split == 1)[0]
    weights = balanced_weights(pool.samples, split == 1)[val]
    results = []
    for c in C_GRID:
        p = measures.sigmoid(pool.logits(pool.fit(split == 0, c), val))
        y = pool.labels[val]
        loss = float(-(weights * np.log(np.where(y, p, 1 - p).clip(1e-6))).sum() / weights.sum())
        accuracy = float(((p >= 0.5) == y).mean())
        results.append({"c": c, "balanced_log_loss": round(loss, 4), "accuracy": round(accuracy, 4)})
        log(f"C={c}: validation balanced log loss {loss:.4f}, accuracy {accuracy:.4f}")
    best = min(results, key=lambda r: r["balanced_log_loss"])
    return float(best["c"]), results


def _fold_record(name: str, held: np.ndarray, correct: np.ndarray, other: float, other_name: str) -> dict[str, Any]:
    return {
        "left_out": name,
        "crops": int(held.sum()),
        "accuracy_on_left_out": round(float(correct.mean()), 4),
        other_name: round(other, 4),
    }


def leave_one_generator_out(pool: Pool, split: np.ndarray, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Refit without each AI group of ≥ FOLD_MIN_CROPS crops and measure its recall (and real test accuracy).

    Groups in the shared-prompt gallery are also held out by prompt: their prompts are cut in two halves,
    and each half is scored by a head trained without the group AND without every gallery image of
    those prompts, so neither the generator nor the subjects were seen.
    """
    counts = {g: int((pool.groups == g).sum()) for g in np.unique(pool.groups[pool.labels])}
    eligible = sorted((g for g, n in counts.items() if n >= FOLD_MIN_CROPS), key=lambda g: (-counts[g], g))
    real_test = np.where((split == 2) & ~pool.labels)[0]
    rng = np.random.default_rng(pool.seed)
    folds = []
    for group in eligible:
        held = pool.groups == group
        prompts = sorted(set(pool.prompts[held]) - {""})
        parts: list[np.ndarray] = []
        if prompts:
            order = list(rng.permutation(prompts))
            halves = [set(order[: len(order) // 2]), set(order[len(order) // 2 :])]
        else:
            halves = [set()]
        real_scores = []
        for number, half in enumerate(halves):
            in_half = np.isin(pool.prompts, list(half)) if half else np.zeros(len(pool.samples), bool)
            scored = held & (in_half | ((pool.prompts == "") if number == 0 else False))
            head = pool.fit((split != 2) & ~held & ~in_half)
            parts.append(pool.logits(head, np.where(scored)[0]) > 0)
            real_scores.append(float((pool.logits(head, real_test) <= 0).mean()))
        correct = np.concatenate(parts)
        fold = _fold_record(group, held, correct, float(np.mean(real_scores)), "real_test_accuracy")
        fold["held_out_by_prompt_too"] = bool(prompts)
        log(
            f"LOGO {fold['left_out']:>22} crops {fold['crops']:>4}  recall {fold['accuracy_on_left_out']:.3f}  "
            f"real test acc {fold['real_test_accuracy']:.3f}{'  (by prompt too)' if prompts else ''}"
        )
        folds.append(fold)
    return folds


def leave_one_real_source_out(pool: Pool, split: np.ndarray, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Refit without each real photo source and measure how many of its photos are called real."""
    ai_test = np.where((split == 2) & pool.labels)[0]
    counts = {g: int((pool.groups == g).sum()) for g in np.unique(pool.groups[~pool.labels])}
    folds = []
    for group in sorted(counts, key=lambda g: (-counts[g], g)):
        held = pool.groups == group
        head = pool.fit((split != 2) & ~held)
        correct = pool.logits(head, np.where(held)[0]) <= 0
        ai_recall = float((pool.logits(head, ai_test) > 0).mean())
        fold = _fold_record(group, held, correct, ai_recall, "ai_test_recall")
        log(
            f"LORO {group:>28} crops {fold['crops']:>4}  accuracy {fold['accuracy_on_left_out']:.3f}  "
            f"AI test recall {ai_recall:.3f}"
        )
        folds.append(fold)
    return folds


def fold_summary(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and minimum accuracy over the folds; the mean also over folds of ≥ FOLD_MIN_CROPS crops."""
    accuracies = [f["accuracy_on_left_out"] for f in folds]
    large = [f["accuracy_on_left_out"] for f in folds if f["crops"] >= FOLD_MIN_CROPS]
    worst = min(folds, key=lambda f: f["accuracy_on_left_out"])
    return {
        "folds": folds,
        "mean_accuracy": round(float(np.mean(accuracies)), 4),
        "mean_accuracy_folds_with_30_or_more_crops": round(float(np.mean(large)), 4) if large else None,
        "min_accuracy": worst["accuracy_on_left_out"],
        "min_fold": worst["left_out"],
    }


def per_group(probabilities: np.ndarray, pool: Pool, indices: np.ndarray) -> dict[str, dict[str, float]]:
    """Accuracy per group on a subset."""
    out: dict[str, dict[str, float]] = {}
    for group in sorted(set(pool.groups[indices])):
        inside = pool.groups[indices] == group
        right = (probabilities[inside] >= 0.5) == pool.labels[indices][inside]
        out[group] = {"n": int(inside.sum()), "accuracy": round(float(right.mean()), 4)}
    return out


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The whole training run; returns the metadata it wrote."""
    started = time.perf_counter()
    samples = load_samples(args.data)
    digest = data_digest(samples)
    split = split_by_source(samples, args.seed)
    log(
        f"{len(samples)} images ({sum(s.is_ai for s in samples)} AI), split sizes {np.bincount(split).tolist()}, "
        f"data sha256 {digest[:12]}"
    )
    backbone = export_backbone_onnx()
    features = extract(
        [s.path for s in samples],
        split == 2,
        model=backbone,
        seed=args.seed,
        crops=SERVICE_CROPS,
        workers=args.workers,
        cache=args.cache,
        data_digest=digest,
        log=log,
    )
    log(f"features ready after {time.perf_counter() - started:.0f} s")
    pool = Pool(samples, features, C_GRID[0], args.seed)
    pool.c, c_search = choose_c(pool, split, log)
    head = pool.fit(split == 0)
    val, test = np.where(split == 1)[0], np.where(split == 2)[0]
    labels = pool.labels
    val_logits = pool.logits(head, val)
    slope, intercept = measures.fit_platt(val_logits, labels[val])

    def calibrate(logits: np.ndarray) -> np.ndarray:
        return measures.sigmoid(slope * logits + intercept)

    val_p = calibrate(val_logits)
    bands = measures.choose_bands(val_p, labels[val])
    test_p = calibrate(pool.logits(head, test))
    robustness: dict[str, float | None] = {"clean": measures.summary(test_p, labels[test])["accuracy"]}
    for name in ROBUSTNESS_TRANSFORMS:
        robustness[name] = measures.summary(calibrate(pool.logits(head, test, name)), labels[test])["accuracy"]
    confidence = np.where(test_p >= 0.5, test_p, 1 - test_p)
    wrong = [int(i) for i in np.argsort(-confidence, kind="stable") if (test_p[i] >= 0.5) != labels[test][i]][:5]
    metrics: dict[str, Any] = {
        "regularisation_search": c_search,
        "validation": measures.summary(val_p, labels[val]),
        "test": measures.summary(test_p, labels[test]),
        "validation_bands": measures.band_report(val_p, labels[val], bands),
        "test_bands": measures.band_report(test_p, labels[test], bands),
        "test_per_group": per_group(test_p, pool, test),
        "robustness_accuracy": robustness,
        "most_confidently_wrong": [
            {"file": samples[test[i]].path.name, "group": samples[test[i]].group, "prob_ai": round(float(test_p[i]), 4)}
            for i in wrong
        ],
    }
    log(
        json.dumps(
            {k: metrics[k] for k in ("validation", "test", "validation_bands", "test_bands", "robustness_accuracy")}
        )
    )
    if args.logo:
        metrics["leave_one_generator_out"] = fold_summary(leave_one_generator_out(pool, split, log))
        metrics["leave_one_real_source_out"] = fold_summary(leave_one_real_source_out(pool, split, log))
        for name in ("leave_one_generator_out", "leave_one_real_source_out"):
            summary = {k: v for k, v in metrics[name].items() if k != "folds"}
            log(f"{name}: {json.dumps(summary)}")
    return write_artifact(args, head, metrics, slope, intercept, bands, digest, samples, split, started)


def export_onnx(head: Head) -> bytes:
    """Backbone and head as one ONNX graph: N×3×H×W floats 0..255 → N raw logits."""
    import torch
    from torch import nn

    from pixelcheck.analysis.detector.training.backbone import FEATURE_COUNT, load_backbone, onnx_bytes

    weight, bias = head.folded()
    linear = nn.Linear(FEATURE_COUNT, 1)
    linear.weight.data = torch.from_numpy(weight.astype(np.float32)).reshape(1, -1)
    linear.bias.data = torch.tensor([bias], dtype=torch.float32)

    class PixelNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = load_backbone()
            self.head = linear

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            return self.head(self.backbone(pixels)).squeeze(1)

    return onnx_bytes(PixelNet(), "logit")


def write_artifact(
    args: argparse.Namespace,
    head: Head,
    metrics: dict[str, Any],
    slope: float,
    intercept: float,
    bands: dict[str, float],
    digest: str,
    samples: list[Sample],
    split: np.ndarray,
    started: float,
) -> dict[str, Any]:
    """Export the ONNX weights, metadata.json and the pinned evaluation split into args.out."""
    from pixelcheck.analysis.detector.training.backbone import (
        BACKBONE_LICENCE,
        BACKBONE_PACKAGE,
        FEATURE_COUNT,
        backbone_version,
        weights_file,
    )

    args.out.mkdir(parents=True, exist_ok=True)
    weights = export_onnx(head)
    (args.out / "model.onnx").write_bytes(weights)
    pinned = {
        "data_sha256": digest,
        "seed": args.seed,
        "rule": "by source image; multi-view groups whole; shared-prompt (SD.Next) gallery by prompt; 70/15/15",
        **{
            name: {
                s.path.name: hashlib.sha256(s.path.read_bytes()).hexdigest()
                for s, part in zip(samples, split, strict=True)
                if part == number
            }
            for number, name in enumerate(SPLIT_NAMES)
            if name != "train"
        },
    }
    (args.out / SPLIT_FILE).write_text(json.dumps(pinned, indent=1) + "\n", encoding="utf-8")
    test, val = metrics["test"], metrics["validation"]
    logo, loro = metrics.get("leave_one_generator_out", {}), metrics.get("leave_one_real_source_out", {})
    metadata: dict[str, Any] = {
        "name": args.name,
        "version": args.version,
        "created": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "weights_file": "model.onnx",
        "weights_sha256": sha256_of(weights),
        "runtime": "onnxruntime (CPU), opset 17",
        "threshold": 0.5,
        "calibration": {"method": "platt", "slope": round(slope, 6), "intercept": round(intercept, 6)},
        "bands": bands,
        "input": {
            "description": f"up to {SERVICE_CROPS} native-resolution RGB crops of {CROP_SIZE}x{CROP_SIZE} "
            "(smaller pictures: one square crop of their shorter side), float 0..255, NCHW; mean logit, "
            "then Platt calibration",
            "crops": SERVICE_CROPS,
            "crop_size": CROP_SIZE,
        },
        "preprocessing": "decode to RGB, no resizing; inside the network: (x - 127) / 128, frozen "
        f"EfficientNet-Lite0, {FEATURE_COUNT} features (pooled head + per-channel mean and std of six stages), "
        "one linear layer (standardisation folded in)",
        "backbone": {
            "architecture": "EfficientNet-Lite0 (ImageNet), frozen",
            "package": BACKBONE_PACKAGE,
            "package_version": backbone_version(),
            "weights_file": weights_file().name,
            "weights_sha256": sha256_of(weights_file().read_bytes()),
            "licence": BACKBONE_LICENCE,
        },
        "training": {
            "seed": args.seed,
            "head": f"logistic regression, L2, C={head_c(metrics)} (chosen on validation)",
            "rows_per_image": f"1 clean (mean over the service crops) + {AUGMENTED_PER_IMAGE} augmented",
            "augmentation": "random downscale 0.45-0.95, Gaussian blur 0.3-1.3, JPEG q55-95, horizontal flip, "
            "random crop",
            "balancing": "per-group weights ~ 1/sqrt(group size), classes equal",
            "split": pinned["rule"],
            "evaluation_split_file": SPLIT_FILE,
            "seconds": round(time.perf_counter() - started, 1),
        },
        "training_data": {
            "description": f"{len(samples)} images, {sum(s.is_ai for s in samples)} AI in "
            f"{len({s.group for s in samples if s.is_ai})} groups, "
            f"{sum(not s.is_ai for s in samples)} real in {len({s.group for s in samples if not s.is_ai})} "
            f"groups; split sizes {dict(zip(SPLIT_NAMES, np.bincount(split).tolist(), strict=True))}",
            "sha256": digest,
            "licence": "mixed: mostly research-only or unstated (see licence_note)",
        },
        "licence_note": args.licence_note,
        "metrics_summary": {
            "test_accuracy": test["accuracy"],
            "test_roc_auc": test["roc_auc"],
            "test_f1": test["f1"],
            "test_ece": test["ece"],
            "validation_accuracy": val["accuracy"],
            "validation_ece": val["ece"],
            "high_band_precision": metrics["test_bands"]["high_accuracy"],
            "high_band_coverage": metrics["test_bands"]["high_coverage"],
            "logo_mean_accuracy": logo.get("mean_accuracy"),
            "logo_min_accuracy": logo.get("min_accuracy"),
            "loro_mean_accuracy": loro.get("mean_accuracy"),
            "loro_min_accuracy": loro.get("min_accuracy"),
        },
        "metrics": metrics,
    }
    (args.out / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return metadata


def head_c(metrics: dict[str, Any]) -> float:
    """The regularisation chosen on validation."""
    return float(min(metrics["regularisation_search"], key=lambda r: r["balanced_log_loss"])["c"])


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of scripts/train-detector."""
    parser = argparse.ArgumentParser(description="Train the PixelCheck pixel model and write a versioned artifact.")
    parser.add_argument("--data", type=Path, required=True, help="folder with ai/ and real/ (optional MANIFEST.csv)")
    parser.add_argument("--out", type=Path, required=True, help="artifact folder to write (weights + metadata.json)")
    parser.add_argument("--name", default="pixelcheck-lite0")
    parser.add_argument("--version", default="2.0.0")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2, help="feature-extraction processes (one thread each)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(".cache/detector-features"),
        help="folder for the feature table (reused when data, backbone and protocol match)",
    )
    parser.add_argument(
        "--logo", action="store_true", help="also run leave-one-generator-out and leave-one-real-source-out folds"
    )
    parser.add_argument("--licence-note", default=RESEARCH_ONLY_NOTE)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of scripts/train-detector."""
    metadata = run(parse_arguments(argv), log=lambda message: print(message, flush=True))
    print(json.dumps(metadata["metrics_summary"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
