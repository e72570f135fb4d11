"""Train, measure and package the pixel model: `scripts/train-detector --data DIR --out MODEL_DIR`.

Frozen EfficientNet-Lite0 features (backbone.py) of every crop, computed once (features.py) → split by
source image, multi-view groups whole, the shared-prompt gallery by prompt, keeping the previous model's
validation and test files where they were (dataset.split_by_source, --keep-split) → candidate heads
(logistic regression, a small MLP) on clean + randomly processed crops of the training split, balanced
per group, chosen on validation → Platt calibration and band cut-offs on validation → a region head on the
crops the region map reads (region_head.py), calibrated on validation → a generator-family head (multinomial
logistic regression on AI images) with temperature scaling on validation → metrics on the held-out test
split (clean, per group, under JPEG q70 / half size / blur σ1 / messaging-app copy, region agreement,
stability, families, the model card), reported once → optional leave-one-generator-out and
leave-one-real-source-out folds (`--logo`) → one ONNX file (backbone + three heads) and metadata.json, plus
the pinned evaluation split. Seeded end to end.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pixelcheck.analysis.detector.pixel_model import crops_disagree
from pixelcheck.analysis.detector.training import measures
from pixelcheck.analysis.detector.training.augment import ROBUSTNESS_TRANSFORMS
from pixelcheck.analysis.detector.training.dataset import (
    data_digest,
    load_samples,
    pinned_assignment,
    split_by_source,
)
from pixelcheck.analysis.detector.training.family_head import family_metrics, fit_family_head
from pixelcheck.analysis.detector.training.features import SERVICE_CROPS, export_features_onnx, extract
from pixelcheck.analysis.detector.training.folds import (
    fold_summary,
    leave_one_generator_out,
    leave_one_real_source_out,
    softmax,
)
from pixelcheck.analysis.detector.training.model_card import model_card
from pixelcheck.analysis.detector.training.packaging import write_artifact
from pixelcheck.analysis.detector.training.pool import Pool, choose
from pixelcheck.analysis.detector.training.region_head import fit_region_head, region_agreement
from pixelcheck.analysis.detector.training.residuals import FEATURE_SETS, feature_columns

RESEARCH_ONLY_NOTE = (
    "Trained on a pool of public images whose licences are mostly research-only or unstated "
    "(ImageNet terms, BSDS research use, generator galleries without a licence, photographers' and personal "
    "photo sites without a licence). For evaluation and demonstration only; retrain on data you hold the "
    "rights to before commercial use."
)
HEAD_CANDIDATES: list[dict[str, Any]] = [
    {"kind": "linear", "c": 0.003},
    {"kind": "mlp", "hidden": 256, "weight_decay": 0.05, "epochs": 6},
    {"kind": "mlp", "hidden": 256, "weight_decay": 0.5, "epochs": 6},
]


def per_group(predicted_ai: np.ndarray, pool: Pool, indices: np.ndarray) -> dict[str, dict[str, float]]:
    """Accuracy per group on a subset."""
    out: dict[str, dict[str, float]] = {}
    for group in sorted(set(pool.groups[indices])):
        inside = pool.groups[indices] == group
        right = predicted_ai[inside] == pool.labels[indices][inside]
        out[group] = {"n": int(inside.sum()), "accuracy": round(float(right.mean()), 4)}
    return out


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
    graph = export_features_onnx()
    table = extract(
        [s.path for s in samples],
        split.tolist(),
        model=graph,
        seed=args.seed,
        crops=SERVICE_CROPS,
        workers=args.workers,
        cache=args.cache,
        data_digest=digest,
        log=log,
    )
    log(f"features ready after {time.perf_counter() - started:.0f} s; the heads read {args.features}")
    pool = Pool(samples, table.columns(feature_columns(args.features)), split, args.seed)
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
    region_spec, region_head, region_slope, region_intercept, region_search = fit_region_head(pool, log)

    def calibrate_regions(logits: np.ndarray) -> np.ndarray:
        return measures.sigmoid(region_slope * logits + region_intercept)

    test_verdict_ai = test_p >= 0.5
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
        "region_search": region_search,
        "region_agreement": region_agreement(pool, region_head, calibrate_regions, test, test_verdict_ai),
        "region_agreement_by_the_verdicts_head": region_agreement(pool, head, calibrate, test, test_verdict_ai),
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
                    "region_agreement_by_the_verdicts_head",
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
        "region_spec": region_spec,
        "region_slope": region_slope,
        "region_intercept": region_intercept,
    }
    return write_artifact(args, (head, family_head, region_head), metrics, fitted, digest, samples, split, started)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of scripts/train-detector."""
    parser = argparse.ArgumentParser(description="Train the PixelCheck pixel model and write a versioned artifact.")
    parser.add_argument("--data", type=Path, required=True, help="folder with ai/ and real/ (optional MANIFEST.csv)")
    parser.add_argument("--out", type=Path, required=True, help="artifact folder to write (weights + metadata.json)")
    parser.add_argument("--name", default="pixelcheck-lite0")
    parser.add_argument("--version", default="3.2.0")
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
    parser.add_argument(
        "--features",
        choices=FEATURE_SETS,
        default="backbone",
        help="what the heads read of each crop: the frozen backbone's features, the residual statistics "
        "(residuals.py), or both",
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
