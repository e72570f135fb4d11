"""Train, measure and package the pixel model: `scripts/train-detector --data DIR --out MODEL_DIR`.

Frozen EfficientNet-Lite0 features (backbone.py) of every crop, computed once (features.py) → split by
source image, multi-view groups whole, the shared-prompt gallery by prompt, keeping the previous model's
validation and test files where they were (dataset.split_by_source, --keep-split) → candidate heads
(logistic regression, a small MLP) on clean + randomly processed crops of the training split, balanced
per group, chosen on validation → Platt calibration and band cut-offs on validation → a generator-family
head (multinomial logistic regression on AI images) with temperature scaling on validation → metrics on
the held-out test split (clean, per group, under JPEG q70 / half size / blur σ1 / messaging-app copy,
region agreement, stability, families, the model card), reported once → optional leave-one-generator-out
and leave-one-real-source-out folds (`--logo`) → one ONNX file (backbone + both heads) and
metadata.json, plus the pinned evaluation split. Seeded end to end.
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
from pixelcheck.analysis.detector.pixel_model import CROP_SIZE, crops_disagree
from pixelcheck.analysis.detector.training import measures
from pixelcheck.analysis.detector.training.augment import ROBUSTNESS_TRANSFORMS
from pixelcheck.analysis.detector.training.dataset import (
    SPLIT_NAMES,
    Sample,
    data_digest,
    load_samples,
    pinned_assignment,
    split_by_source,
)
from pixelcheck.analysis.detector.training.families import family_ids, family_names
from pixelcheck.analysis.detector.training.features import AUGMENTED_PER_IMAGE, export_backbone_onnx, extract
from pixelcheck.analysis.detector.training.folds import (
    fold_summary,
    leave_one_generator_out,
    leave_one_real_source_out,
    softmax,
)
from pixelcheck.analysis.detector.training.model_card import model_card
from pixelcheck.analysis.detector.training.pool import Head, Pool, choose

RESEARCH_ONLY_NOTE = (
    "Trained on a pool of public images whose licences are mostly research-only or unstated "
    "(ImageNet terms, BSDS research use, generator galleries without a licence, photographers' and personal "
    "photo sites without a licence). For evaluation and demonstration only; retrain on data you hold the "
    "rights to before commercial use."
)
SPLIT_FILE = "evaluation_split.json"
SERVICE_CROPS = 4
HEAD_CANDIDATES: list[dict[str, Any]] = [
    {"kind": "linear", "c": 0.003},
    {"kind": "mlp", "hidden": 256, "weight_decay": 0.05, "epochs": 6},
    {"kind": "mlp", "hidden": 256, "weight_decay": 0.5, "epochs": 6},
]
FAMILY_CANDIDATES: list[dict[str, Any]] = [
    {"kind": "mlp", "hidden": 256, "weight_decay": 0.5, "epochs": 8},
]
UNKNOWN_FAMILY_BELOW = 0.5  # a family is named only when its calibrated probability reaches this
# On images of a family the head never saw, at most this share may get a (necessarily wrong) family at p >= 0.8.
OPEN_SET_CONFIDENT_SHARE = 0.15


def per_group(predicted_ai: np.ndarray, pool: Pool, indices: np.ndarray) -> dict[str, dict[str, float]]:
    """Accuracy per group on a subset."""
    out: dict[str, dict[str, float]] = {}
    for group in sorted(set(pool.groups[indices])):
        inside = pool.groups[indices] == group
        right = predicted_ai[inside] == pool.labels[indices][inside]
        out[group] = {"n": int(inside.sum()), "accuracy": round(float(right.mean()), 4)}
    return out


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The softmax temperature with the lowest log loss on these examples (grid search)."""
    grid = np.exp(np.linspace(np.log(0.3), np.log(5.0), 60))
    losses = [-np.log(softmax(logits, t)[np.arange(len(targets)), targets].clip(1e-9)).mean() for t in grid]
    return float(grid[int(np.argmin(losses))])


def family_metrics(probabilities: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    """Top-1 accuracy overall and per family, share named 'unknown', and calibration of the top probability."""
    ids = family_ids()
    top = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    named = confidence >= UNKNOWN_FAMILY_BELOW
    per_family = {}
    for number, family in enumerate(ids):
        inside = targets == number
        if inside.any():
            per_family[family] = {
                "n": int(inside.sum()),
                "top1": round(float((top[inside] == number).mean()), 4),
                "named_right": round(float(((top == number) & named)[inside].mean()), 4),
                "unknown": round(float((~named[inside]).mean()), 4),
            }
    return {
        "n": int(len(targets)),
        "top1": round(float((top == targets).mean()), 4),
        "top2": round(float((np.argsort(-probabilities, axis=1)[:, :2] == targets[:, None]).any(axis=1).mean()), 4),
        "unknown_share": round(float((~named).mean()), 4),
        "named_and_right": round(float(((top == targets) & named).sum() / max(1, named.sum())), 4),
        "ece_top": round(measures.top_label_ece(confidence, top == targets), 4),
        "per_family": per_family,
    }


def stability_report(
    original: np.ndarray, copy: np.ndarray, spread: np.ndarray, labels: np.ndarray, calibrate: Callable
) -> dict[str, Any]:
    """How often the messaging-app copy flips the label, how often crops disagree, and what flagging them buys."""
    p, q = calibrate(original), calibrate(copy)
    flips = (p >= 0.5) != (q >= 0.5)
    flagged = flips | spread
    correct = (p >= 0.5) == labels
    return {
        "flips_to_social_copy": round(float(flips.mean()), 4),
        "crops_disagree": round(float(spread.mean()), 4),
        "flagged_low": round(float(flagged.mean()), 4),
        "accuracy_flagged": round(float(correct[flagged].mean()), 4) if flagged.any() else None,
        "accuracy_not_flagged": round(float(correct[~flagged].mean()), 4) if (~flagged).any() else None,
        "social_copy_accuracy": round(float(((q >= 0.5) == labels).mean()), 4),
    }


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The whole training run; returns the metadata it wrote."""
    started = time.perf_counter()
    samples = load_samples(args.data)
    digest = data_digest(samples)
    pinned = pinned_assignment(args.keep_split, samples, args.seed) if args.keep_split else None
    split = split_by_source(samples, args.seed, pinned=pinned)
    log(
        f"{len(samples)} images ({sum(s.is_ai for s in samples)} AI), split sizes {np.bincount(split).tolist()}, "
        f"data sha256 {digest[:12]}"
        + (f", {len(pinned)} files kept where {args.keep_split} put them" if pinned else "")
    )
    backbone = export_backbone_onnx()
    table = extract(
        [s.path for s in samples],
        split.tolist(),
        model=backbone,
        seed=args.seed,
        crops=SERVICE_CROPS,
        workers=args.workers,
        cache=args.cache,
        data_digest=digest,
        log=log,
    )
    log(f"features ready after {time.perf_counter() - started:.0f} s")
    pool = Pool(samples, table, split, args.seed)
    spec, head_search = choose(pool, HEAD_CANDIDATES, log)
    head = pool.fit(split == 0, spec)
    val, test = np.where(split == 1)[0], np.where(split == 2)[0]
    labels = pool.labels
    val_logits = pool.image_logits(head, val)
    slope, intercept = measures.fit_platt(val_logits, labels[val])

    def calibrate(logits: np.ndarray) -> np.ndarray:
        return measures.sigmoid(slope * logits + intercept)

    val_p = calibrate(val_logits)
    bands = measures.choose_bands(val_p, labels[val])
    test_p = calibrate(pool.image_logits(head, test))
    robustness: dict[str, float | None] = {"clean": measures.summary(test_p, labels[test])["accuracy"]}
    for name in ROBUSTNESS_TRANSFORMS:
        transformed = calibrate(pool.image_logits(head, test, f"robust:{name}"))
        robustness[name] = measures.summary(transformed, labels[test])["accuracy"]

    def spread(indices: np.ndarray) -> np.ndarray:
        return np.array([crops_disagree(list(calibrate(c))) for c in pool.crop_logits(head, indices)])

    stability = {
        "validation": stability_report(
            val_logits, pool.image_logits(head, val, "robust:social_copy"), spread(val), labels[val], calibrate
        ),
        "test": stability_report(
            pool.image_logits(head, test),
            pool.image_logits(head, test, "robust:social_copy"),
            spread(test),
            labels[test],
            calibrate,
        ),
    }
    region_logits = pool.region_logits(head)
    on_side = [
        float(((calibrate(logits) >= 0.5) == labels[image]).mean())
        for image, logits in region_logits.items()
        if split[image] == 2
    ]
    ai_regions = [s for (image, _), s in zip(region_logits.items(), on_side, strict=True) if labels[image]]
    real_regions = [s for (image, _), s in zip(region_logits.items(), on_side, strict=True) if not labels[image]]
    family_spec, family_head, temperature, family_search = fit_family_head(pool, log)
    test_ai = test[labels[test]]
    test_family_p = softmax(pool.image_logits(family_head, test_ai), temperature)
    confidence = np.where(test_p >= 0.5, test_p, 1 - test_p)
    wrong = [int(i) for i in np.argsort(-confidence, kind="stable") if (test_p[i] >= 0.5) != labels[test][i]][:5]
    metrics: dict[str, Any] = {
        "head_search": head_search,
        "validation": measures.summary(val_p, labels[val]),
        "test": measures.summary(test_p, labels[test]),
        "validation_bands": measures.band_report(val_p, labels[val], bands),
        "test_bands": measures.band_report(test_p, labels[test], bands),
        "test_per_group": per_group(test_p >= 0.5, pool, test),
        "robustness_accuracy": robustness,
        "stability": stability,
        "region_agreement": {
            "ai_regions_on_ai_side": round(float(np.mean(ai_regions)), 4) if ai_regions else None,
            "real_regions_on_real_side": round(float(np.mean(real_regions)), 4) if real_regions else None,
            "images": len(on_side),
        },
        "family_search": family_search,
        "test_families": family_metrics(test_family_p, pool.families[test_ai]),
        "model_card": model_card(pool.groups[test], labels[test], test_p >= 0.5),
        "most_confidently_wrong": [
            {"file": samples[test[i]].path.name, "group": samples[test[i]].group, "prob_ai": round(float(test_p[i]), 4)}
            for i in wrong
        ],
    }
    log(
        json.dumps(
            {
                k: metrics[k]
                for k in (
                    "validation",
                    "test",
                    "test_bands",
                    "robustness_accuracy",
                    "stability",
                    "region_agreement",
                )
            }
        )
    )
    log(json.dumps({k: v for k, v in metrics["test_families"].items() if k != "per_family"}))
    if args.logo:
        only = frozenset(args.fold_groups.split(",")) if args.fold_groups else None
        metrics["leave_one_generator_out"] = fold_summary(
            leave_one_generator_out(pool, spec, family_spec, temperature, log, only)
        )
        metrics["leave_one_real_source_out"] = fold_summary(leave_one_real_source_out(pool, spec, log, only))
        if only:
            for name in ("leave_one_generator_out", "leave_one_real_source_out"):
                metrics[name]["only_these_groups"] = sorted(only)
        for name in ("leave_one_generator_out", "leave_one_real_source_out"):
            summary = {k: v for k, v in metrics[name].items() if k != "folds"}
            log(f"{name}: {json.dumps(summary)}")
    fitted = {
        "spec": spec,
        "family_spec": family_spec,
        "slope": slope,
        "intercept": intercept,
        "bands": bands,
        "temperature": temperature,
    }
    return write_artifact(args, head, family_head, metrics, fitted, digest, samples, split, started)


def fit_family_head(
    pool: Pool, log: Callable[[str], None]
) -> tuple[dict[str, Any], Head, float, list[dict[str, Any]]]:
    """The family head of lowest validation log loss among FAMILY_CANDIDATES, and its temperature."""
    val_ai = np.where((pool.split == 1) & pool.labels)[0]
    targets = pool.families[val_ai]
    results = []
    fitted = []
    for spec in FAMILY_CANDIDATES:
        head = pool.fit_families(pool.split == 0, spec)
        logits = pool.image_logits(head, val_ai)
        temperature = fit_temperature(logits, targets)
        probabilities = softmax(logits, temperature)
        loss = float(-np.log(probabilities[np.arange(len(targets)), targets].clip(1e-9)).mean())
        top1 = float((probabilities.argmax(axis=1) == targets).mean())
        results.append(
            {**spec, "log_loss": round(loss, 4), "top1": round(top1, 4), "temperature": round(temperature, 4)}
        )
        fitted.append((spec, head, temperature))
        log(f"family head {spec}: validation log loss {loss:.4f}, top-1 {top1:.4f}, temperature {temperature:.3f}")
    best = int(np.argmin([r["log_loss"] for r in results]))
    spec, head, temperature = fitted[best]
    opened = open_set_temperature(pool, spec, temperature, log)
    results.append({"open_set_temperature": round(opened, 4), "validation_temperature": round(temperature, 4)})
    return spec, head, max(temperature, opened), results


def open_set_temperature(pool: Pool, spec: dict[str, Any], start: float, log: Callable[[str], None]) -> float:
    """The lowest temperature (≥ start) at which, on training and validation images of a family left out of the
    family head's training, on average at most OPEN_SET_CONFIDENT_SHARE get a family at p ≥ 0.8.

    Validation alone calibrates the head for generators it knows, where it is sure and right; a generator
    it never saw still gets a family, and that one is wrong. Leaving each family out in turn (training split
    only; the test split is never used) measures how sure the head is then, and the temperature is raised
    until such images are rarely named with confidence.
    """
    held_logits: list[np.ndarray] = []
    for number, family in enumerate(family_ids()):
        held = pool.families == number
        if not (held & (pool.split == 0)).any():
            continue
        head = pool.fit_families((pool.split == 0) & ~held, spec)
        held_logits.append(pool.image_logits(head, np.where(held & (pool.split != 2))[0]))
        log(f"family head without {family}: {int((held & (pool.split != 2)).sum())} images scored")
    grid = np.exp(np.linspace(np.log(start), np.log(20.0), 80))
    for temperature in grid:
        shares = [float((softmax(logits, temperature).max(axis=1) >= 0.8).mean()) for logits in held_logits]
        if np.mean(shares) <= OPEN_SET_CONFIDENT_SHARE:
            log(f"open-set temperature {temperature:.3f}: unseen-family images named at p>=0.8 {np.mean(shares):.3f}")
            return float(temperature)
    return float(grid[-1])


def export_onnx(head: Head, family_head: Head) -> bytes:
    """Backbone and both heads as one ONNX graph: N×3×H×W floats 0..255 → N raw logits, N×K family logits."""
    import torch
    from torch import nn

    from pixelcheck.analysis.detector.training.backbone import load_backbone, onnx_bytes

    class PixelNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = load_backbone()
            self.head = head.module()
            self.families = family_head.module()

        def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            features = self.backbone(pixels)
            return self.head(features).squeeze(1), self.families(features)

    return onnx_bytes(PixelNet(), ("logit", "family_logits"))


def _head_description(spec: dict[str, Any]) -> str:
    if spec["kind"] == "linear":
        return f"logistic regression, L2, C={spec['c']} (chosen on validation)"
    return (
        f"MLP: one hidden layer of {spec['hidden']} ReLU units, dropout 0.3, AdamW weight decay "
        f"{spec['weight_decay']}, {spec['epochs']} epochs, feature noise σ 0.1 (chosen on validation)"
    )


def write_artifact(
    args: argparse.Namespace,
    head: Head,
    family_head: Head,
    metrics: dict[str, Any],
    fitted: dict[str, Any],
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
    weights = export_onnx(head, family_head)
    (args.out / "model.onnx").write_bytes(weights)
    rule = (
        "by source image; multi-view groups whole; shared-prompt (SD.Next) gallery by prompt; 70/15/15; "
        "the previous model's train/validation/test files kept where they were, new files split by the same rule"
    )
    pinned: dict[str, Any] = {"data_sha256": digest, "seed": args.seed, "rule": rule}
    for number, name in enumerate(SPLIT_NAMES):
        chosen = [s for s, part in zip(samples, split, strict=True) if part == number]
        pinned[name] = (
            sorted(s.path.name for s in chosen)
            if name == "train"
            else {s.path.name: hashlib.sha256(s.path.read_bytes()).hexdigest() for s in chosen}
        )
    (args.out / SPLIT_FILE).write_text(json.dumps(pinned, indent=1) + "\n", encoding="utf-8")
    test, val = metrics["test"], metrics["validation"]
    logo, loro = metrics.get("leave_one_generator_out", {}), metrics.get("leave_one_real_source_out", {})
    names = family_names()
    metadata: dict[str, Any] = {
        "name": args.name,
        "version": args.version,
        "created": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "weights_file": "model.onnx",
        "weights_sha256": sha256_of(weights),
        "runtime": "onnxruntime (CPU), opset 17",
        "threshold": 0.5,
        "calibration": {
            "method": "platt",
            "slope": round(fitted["slope"], 6),
            "intercept": round(fitted["intercept"], 6),
        },
        "bands": fitted["bands"],
        "families": {
            "ids": family_ids(),
            "names": [names[f] for f in family_ids()],
            "temperature": round(fitted["temperature"], 6),
            "unknown_below": UNKNOWN_FAMILY_BELOW,
            "description": "second ONNX output `family_logits` (N×K per crop): mean over the crops, divided by "
            "the temperature, softmax; named only when the verdict is AI and the top probability reaches "
            "unknown_below",
        },
        "input": {
            "description": f"up to {SERVICE_CROPS} native-resolution RGB crops of {CROP_SIZE}x{CROP_SIZE} "
            "(smaller pictures: one square crop of their shorter side), float 0..255, NCHW; mean logit, "
            "then Platt calibration; the same read of the picture's messaging-app copy (long side 1080, JPEG q80) "
            "checks stability",
            "crops": SERVICE_CROPS,
            "crop_size": CROP_SIZE,
        },
        "preprocessing": "decode to RGB, no resizing; inside the network: (x - 127) / 128, frozen "
        f"EfficientNet-Lite0, {FEATURE_COUNT} features (pooled head + per-channel mean and std of six stages), "
        f"{_head_description(fitted['spec'])} (standardisation folded in), and a family head of the same kind",
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
            "head": _head_description(fitted["spec"]),
            "family_head": f"{_head_description(fitted['family_spec'])} over {len(family_ids())} families, on AI "
            f"images; temperature {fitted['temperature']:.3f} (validation, raised until images of a left-out family "
            f"are rarely named at p >= 0.8)",
            "rows_per_image": f"the service crops (one row each) + {AUGMENTED_PER_IMAGE} augmented crops",
            "augmentation": "random downscale 0.45-0.95, Gaussian blur 0.3-1.3, JPEG q55-95, horizontal flip, "
            "random 224 px crop; a messaging-app copy (long side 720-1600, JPEG q65-90) with a random 224 px crop; "
            "a random processing chain with a random 128 px crop (the region map's region size)",
            "balancing": "per-group weights ~ 1/sqrt(group size), classes equal (families equal for the family head)",
            "split": rule,
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
        "model_card": metrics["model_card"],
        "metrics_summary": {
            "test_accuracy": test["accuracy"],
            "test_roc_auc": test["roc_auc"],
            "test_f1": test["f1"],
            "test_ece": test["ece"],
            "validation_accuracy": val["accuracy"],
            "validation_ece": val["ece"],
            "high_band_precision": metrics["test_bands"]["high_accuracy"],
            "high_band_coverage": metrics["test_bands"]["high_coverage"],
            "family_top1": metrics["test_families"]["top1"],
            "social_copy_flip_rate": metrics["stability"]["test"]["flips_to_social_copy"],
            "region_agreement_ai": metrics["region_agreement"]["ai_regions_on_ai_side"],
            "region_agreement_real": metrics["region_agreement"]["real_regions_on_real_side"],
            "logo_mean_accuracy": logo.get("mean_accuracy_folds_with_30_or_more_crops"),
            "logo_min_accuracy": logo.get("min_accuracy"),
            "loro_mean_accuracy": loro.get("mean_accuracy"),
            "loro_min_accuracy": loro.get("min_accuracy"),
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
    parser.add_argument("--name", default="pixelcheck-lite0")
    parser.add_argument("--version", default="3.0.0")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--keep-split",
        type=Path,
        help="a previous model's evaluation_split.json: its files keep their split, new files are added by the rule",
    )
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
    parser.add_argument(
        "--fold-groups",
        help="with --logo: fold only these comma-separated groups (AI groups of >= 30 crops, real sources)",
    )
    parser.add_argument("--licence-note", default=RESEARCH_ONLY_NOTE)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of scripts/train-detector."""
    import torch

    torch.set_num_threads(1)
    metadata = run(parse_arguments(argv), log=lambda message: print(message, flush=True))
    print(json.dumps(metadata["metrics_summary"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
