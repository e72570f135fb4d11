"""Packaging a trained pixel model: one ONNX graph (features and three heads), metadata.json and the pinned split."""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from pixelcheck.analysis.detector.artifact import sha256_of
from pixelcheck.analysis.detector.pixel_model import CROP_SIZE, REGION_OUTPUT
from pixelcheck.analysis.detector.regions import MAP_PIXELS, REGION_CROP, region_crop_size
from pixelcheck.analysis.detector.training.dataset import SPLIT_NAMES, Sample
from pixelcheck.analysis.detector.training.families import family_ids, family_names
from pixelcheck.analysis.detector.training.family_head import UNKNOWN_FAMILY_BELOW
from pixelcheck.analysis.detector.training.features import AUGMENTED_PER_IMAGE, SERVICE_CROPS
from pixelcheck.analysis.detector.training.pool import Head
from pixelcheck.analysis.detector.training.residuals import RESIDUAL_FEATURE_COUNT

SPLIT_FILE = "evaluation_split.json"


def export_onnx(head: Head, family_head: Head, region_head: Head, feature_set: str) -> bytes:
    """Features and the three heads as one ONNX graph: N×3×H×W floats 0..255 → N raw logits, N×K family
    logits, N raw region logits."""
    import torch
    from torch import nn

    from pixelcheck.analysis.detector.training.backbone import onnx_bytes
    from pixelcheck.analysis.detector.training.residuals import PixelFeatures

    class PixelNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = PixelFeatures(feature_set)
            self.head = head.module()
            self.families = family_head.module()
            self.regions = region_head.module()

        def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            features = self.backbone(pixels)
            return self.head(features).squeeze(1), self.families(features), self.regions(features).squeeze(1)

    return onnx_bytes(PixelNet(), ("logit", "family_logits", REGION_OUTPUT))


def _head_description(spec: dict[str, Any]) -> str:
    if spec["kind"] == "linear":
        return f"logistic regression, L2, C={spec['c']} (chosen on validation)"
    return (
        f"MLP: one hidden layer of {spec['hidden']} ReLU units, dropout 0.3, AdamW weight decay "
        f"{spec['weight_decay']}, {spec['epochs']} epochs, feature noise σ 0.1 (chosen on validation)"
    )


def _features_description(feature_set: str) -> str:
    from pixelcheck.analysis.detector.training.backbone import FEATURE_COUNT, HEAD_CHANNELS

    backbone = "(x - 127) / 128, frozen EfficientNet-Lite0"
    described = {
        "backbone": f"{backbone}, {FEATURE_COUNT} features (pooled head + per-channel mean and std of six stages)",
        "texture": f"{backbone}, {FEATURE_COUNT - HEAD_CHANNELS} features (per-channel mean and std of six stages, "
        "without the pooled head)",
        "residuals": f"{RESIDUAL_FEATURE_COUNT} fixed statistics of high-pass residuals (the low-level expert: 8x8 "
        "phase periodicity, clipped-residual histograms and co-occurrences, energy, kurtosis, colour-plane "
        "correlation)",
    }
    return " beside ".join(described[part] for part in feature_set.split("+"))


def write_artifact(
    args: argparse.Namespace,
    heads: tuple[Head, Head, Head],
    metrics: dict[str, Any],
    fitted: dict[str, Any],
    digest: str,
    samples: list[Sample],
    split: np.ndarray,
    started: float,
) -> dict[str, Any]:
    """Export the ONNX weights (heads: verdict, family, region), metadata.json and the pinned evaluation split
    into args.out."""
    from pixelcheck.analysis.detector.training.backbone import (
        BACKBONE_LICENCE,
        BACKBONE_PACKAGE,
        backbone_version,
        weights_file,
    )

    args.out.mkdir(parents=True, exist_ok=True)
    weights = export_onnx(*heads, args.features)
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
        "regions": {
            "description": f"the region map reads each region through one centred native-resolution crop of "
            f"{REGION_CROP} px, smaller on a dense grid so that a map reads at most {MAP_PIXELS:,} pixels (8x8 "
            f"regions: {region_crop_size(64)} px); output {REGION_OUTPUT}: "
            f"{_head_description(fitted['region_spec'])}, trained on those crops of the training images, then "
            "Platt calibration on the validation images' regions",
            "crop_size": REGION_CROP,
            "map_pixels": MAP_PIXELS,
            "calibration": {
                "method": "platt",
                "slope": round(fitted["region_slope"], 6),
                "intercept": round(fitted["region_intercept"], 6),
            },
        },
        "preprocessing": f"decode to RGB, no resizing; inside the network: {_features_description(args.features)}; "
        f"{_head_description(fitted['spec'])} (standardisation folded in), and a family head of the same kind",
        "features": args.features,
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
            "region_agreement_verdict": metrics["region_agreement"]["regions_on_the_verdicts_side"],
            "logo_mean_accuracy": logo.get("mean_accuracy_folds_with_30_or_more_crops"),
            "logo_min_accuracy": logo.get("min_accuracy"),
            "loro_mean_accuracy": loro.get("mean_accuracy"),
            "loro_min_accuracy": loro.get("min_accuracy"),
        },
        "metrics": metrics,
    }
    (args.out / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return metadata


