"""Train, measure and package the pixel model: `scripts/train-detector --data DIR --out MODEL_DIR`.

Source-aware split (no source image in two splits) → per-group balanced training on randomly processed
crops → Platt calibration and band thresholds on validation → metrics on the held-out test split (clean,
per group, under JPEG q70 / half-size / blur σ=1) → optional leave-one-generator-out folds → ONNX weights
and metadata.json. Seeded end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pixelcheck.analysis.detector.artifact import sha256_of
from pixelcheck.analysis.detector.pixel_model import CROP_SIZE
from pixelcheck.analysis.detector.training import measures
from pixelcheck.analysis.detector.training.augment import ROBUSTNESS_TRANSFORMS
from pixelcheck.analysis.detector.training.dataset import Sample, data_digest, load_samples, split_by_source
from pixelcheck.analysis.detector.training.network import TRAIN_CROP, ResidualNet, predict_logits, train_network

RESEARCH_ONLY_NOTE = (
    "Trained on a pool of public images whose licences are mostly research-only or unstated "
    "(ImageNet terms, BSDS research use, generator galleries without a licence). For evaluation and "
    "demonstration only; retrain on data you hold the rights to before commercial use."
)
SMALL_GROUP = 50  # generators with fewer crops are left out together, as one fold (budget: one CNN per fold)


def balanced_weights(samples: list[Sample], mask: np.ndarray) -> np.ndarray:
    """Sampling weights: each group's share grows with √size, and both classes weigh the same in total."""
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


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _fit(
    images: list[np.ndarray],
    samples: list[Sample],
    mask: np.ndarray,
    epochs: int,
    seed: int,
    log: Callable[[str], None],
) -> ResidualNet:
    """Train one network on the samples selected by mask."""
    _seed_everything(seed)
    indices = np.where(mask)[0]
    labels = np.array([s.is_ai for s in samples])
    weights = balanced_weights(samples, mask)
    return train_network(
        [images[i] for i in indices], labels[indices], weights[indices], epochs=epochs, seed=seed, log=log
    )


def leave_one_generator_out(
    images: list[np.ndarray],
    samples: list[Sample],
    split: np.ndarray,
    epochs: int,
    seed: int,
    log: Callable[[str], None],
) -> list[dict[str, object]]:
    """Train without each generator (small ones together) and measure recall on it, plus real-photo accuracy."""
    groups = np.array([s.group for s in samples])
    labels = np.array([s.is_ai for s in samples])
    counts = {g: int((groups == g).sum()) for g in np.unique(groups[labels])}
    small = sorted(g for g, n in counts.items() if n < SMALL_GROUP)
    folds = [[g] for g in sorted(counts, key=lambda g: -counts[g]) if g not in small] + ([small] if small else [])
    results = []
    for left_out in folds:
        held = np.isin(groups, left_out)
        model = _fit(images, samples, (split != 2) & ~held, epochs, seed, log=lambda _m: None)
        ai_logits = predict_logits(model, [images[i] for i in np.where(held)[0]])
        real_test = np.where((split == 2) & ~labels)[0]
        real_logits = predict_logits(model, [images[i] for i in real_test])
        fold = {
            "left_out": "+".join(left_out),
            "crops": int(held.sum()),
            "accuracy_on_left_out": round(float((ai_logits > 0).mean()), 4),
            "real_test_accuracy": round(float((real_logits <= 0).mean()), 4),
        }
        log(f"LOGO {fold}")
        results.append(fold)
    return results


def _per_group(probabilities: np.ndarray, samples: list[Sample], indices: np.ndarray) -> dict[str, dict[str, float]]:
    """Accuracy per group on a subset."""
    out: dict[str, dict[str, float]] = {}
    for group in sorted({samples[i].group for i in indices}):
        inside = np.array([samples[i].group == group for i in indices])
        labels = np.array([samples[i].is_ai for i in indices])[inside]
        out[group] = {
            "n": int(inside.sum()),
            "accuracy": round(float(((probabilities[inside] >= 0.5) == labels).mean()), 4),
        }
    return out


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The whole training run; returns the metadata it wrote."""
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    samples = load_samples(args.data)
    digest = data_digest(samples)
    split = split_by_source(samples, args.seed)
    images = [np.asarray(Image.open(s.path).convert("RGB")) for s in samples]
    labels = np.array([s.is_ai for s in samples])
    log(
        f"{len(samples)} images ({labels.sum()} AI), split sizes {np.bincount(split).tolist()}, "
        f"data sha256 {digest[:12]}"
    )
    model = _fit(images, samples, split == 0, args.epochs, args.seed, log)
    val, test = np.where(split == 1)[0], np.where(split == 2)[0]
    val_logits = predict_logits(model, [images[i] for i in val])
    slope, intercept = measures.fit_platt(val_logits, labels[val])
    calibrate = lambda logits: measures.sigmoid(slope * logits + intercept)  # noqa: E731
    val_p = calibrate(val_logits)
    bands = measures.choose_bands(val_p, labels[val])
    test_p = calibrate(predict_logits(model, [images[i] for i in test]))
    robustness = {"clean": measures.summary(test_p, labels[test])["accuracy"]}
    for name, transform in ROBUSTNESS_TRANSFORMS.items():
        transformed = [np.asarray(transform(Image.fromarray(images[i]))) for i in test]
        robustness[name] = measures.summary(calibrate(predict_logits(model, transformed)), labels[test])["accuracy"]
    confidence = np.where(test_p >= 0.5, test_p, 1 - test_p)
    wrong = [int(i) for i in np.argsort(-confidence) if (test_p[i] >= 0.5) != labels[test][i]][:3]
    metrics: dict[str, Any] = {
        "validation": measures.summary(val_p, labels[val]),
        "test": measures.summary(test_p, labels[test]),
        "test_bands": measures.band_report(test_p, labels[test], bands),
        "validation_bands": measures.band_report(val_p, labels[val], bands),
        "test_per_group": _per_group(test_p, samples, test),
        "robustness_accuracy": robustness,
        "most_confidently_wrong": [
            {"file": samples[test[i]].path.name, "group": samples[test[i]].group, "prob_ai": round(float(test_p[i]), 4)}
            for i in wrong
        ],
    }
    log(json.dumps({k: metrics[k] for k in ("validation", "test", "test_bands", "robustness_accuracy")}))
    metadata = _write_artifact(args, model, metrics, slope, intercept, bands, digest, samples, started)
    if args.logo:  # the artifact is already usable; the folds only add their measurements to its metadata
        folds = leave_one_generator_out(images, samples, split, args.logo_epochs, args.seed, log)
        mean = round(float(np.mean([f["accuracy_on_left_out"] for f in folds])), 4)
        metrics["leave_one_generator_out"] = {"epochs": args.logo_epochs, "folds": folds, "mean_accuracy": mean}
        metadata["metrics_summary"]["logo_mean_accuracy"] = mean
        (args.out / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return metadata


def _write_artifact(
    args: argparse.Namespace,
    model: ResidualNet,
    metrics: dict[str, Any],
    slope: float,
    intercept: float,
    bands: dict[str, float],
    digest: str,
    samples: list[Sample],
    started: float,
) -> dict[str, Any]:
    """Export ONNX weights and metadata.json into args.out."""
    from pixelcheck.analysis.detector.training.network import export_onnx  # needs the onnx package

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        onnx_path = os.path.join(scratch, "model.onnx")
        export_onnx(model, onnx_path)
        weights = Path(onnx_path).read_bytes()
    (args.out / "model.onnx").write_bytes(weights)
    test, val = metrics["test"], metrics["validation"]
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
            "description": f"up to 5 native-resolution RGB crops of {CROP_SIZE}x{CROP_SIZE} (8-aligned), "
            "float 0..255, NCHW; mean logit, then Platt calibration",
            "crops": 5,
            "crop_size": CROP_SIZE,
        },
        "preprocessing": "decode to RGB, no resizing; inside the network: 3x3 local-mean high-pass residual "
        "and neighbouring-pixel residual (pixel minus its 2x2 cell anchor), both divided by 8",
        "training": {
            "seed": args.seed,
            "epochs": args.epochs,
            "train_crop": TRAIN_CROP,
            "augmentation": "random downscale 0.5-0.95, Gaussian blur 0.3-1.3, JPEG q55-95, "
            "horizontal flip, random even-aligned crops",
            "balancing": "per-group weights ~ 1/sqrt(group size), classes equal",
            "split": "by source image, per group 70/15/15",
            "seconds": round(time.perf_counter() - started, 1),
        },
        "training_data": {
            "description": f"{len(samples)} images, {sum(s.is_ai for s in samples)} AI in "
            f"{len({s.group for s in samples if s.is_ai})} groups, "
            f"{sum(not s.is_ai for s in samples)} real in {len({s.group for s in samples if not s.is_ai})} groups",
            "sha256": digest,
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
        },
        "metrics": metrics,
    }
    (args.out / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return metadata


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of scripts/train-detector."""
    parser = argparse.ArgumentParser(description="Train the PixelCheck pixel model and write a versioned artifact.")
    parser.add_argument("--data", type=Path, required=True, help="folder with ai/ and real/ (optional MANIFEST.csv)")
    parser.add_argument("--out", type=Path, required=True, help="artifact folder to write (weights + metadata.json)")
    parser.add_argument("--name", default="pixelcheck-residual")
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--logo", action="store_true", help="also run leave-one-generator-out folds")
    parser.add_argument("--logo-epochs", type=int, default=6)
    parser.add_argument("--licence-note", default=RESEARCH_ONLY_NOTE)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of scripts/train-detector."""
    metadata = run(parse_arguments(argv), log=lambda message: print(message, flush=True))
    print(json.dumps(metadata["metrics_summary"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
