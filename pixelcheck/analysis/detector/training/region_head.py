"""The region head: what the region map reads of each region, trained on the crops the map reads.

A region is read through one crop of at most 128 px (pixel_model.region_crop), while the verdict's head learned
mostly from 224 px crops. fit_region_head() picks the candidate of lowest validation log loss on the validation
images' region crops, refits it on the training images' and calibrates it (Platt) on the validation regions;
region_agreement() is what the model card reports, for this head and for the verdict's head on the same crops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pixelcheck.analysis.detector.training import measures
from pixelcheck.analysis.detector.training.pool import Head, Pool, balanced_weights

REGION_CANDIDATES: list[dict[str, Any]] = [
    {"kind": "linear", "c": 0.003},
    {"kind": "mlp", "hidden": 256, "weight_decay": 0.05, "epochs": 6},
    {"kind": "mlp", "hidden": 256, "weight_decay": 0.5, "epochs": 6},
]


def _region_rows(pool: Pool, head: Head, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(region logits, their images' labels, row weights: images balanced as in training, shared by regions)."""
    per_image = pool.region_logits(head, indices)
    weights = balanced_weights(pool.samples, np.isin(np.arange(len(pool.samples)), indices))[indices]
    logits = np.concatenate(per_image)
    labels = np.concatenate([np.full(len(r), pool.labels[i]) for r, i in zip(per_image, indices, strict=True)])
    shares = np.concatenate([np.full(len(r), w / max(1, len(r))) for r, w in zip(per_image, weights, strict=True)])
    return logits, labels, shares


def fit_region_head(
    pool: Pool, log: Callable[[str], None]
) -> tuple[dict[str, Any], Head, float, float, list[dict[str, Any]]]:
    """(spec, head, Platt slope, Platt intercept, search results) of the region head."""
    val = np.where(pool.split == 1)[0]
    results = []
    for spec in REGION_CANDIDATES:
        logits, labels, weights = _region_rows(pool, pool.fit_regions(pool.split == 0, spec), val)
        p = measures.sigmoid(logits)
        loss = float(-(weights * np.log(np.where(labels, p, 1 - p).clip(1e-6))).sum() / weights.sum())
        accuracy = float(((p >= 0.5) == labels).mean())
        results.append({**spec, "balanced_log_loss": round(loss, 4), "accuracy": round(accuracy, 4)})
        log(f"region head {spec}: validation balanced log loss {loss:.4f}, region accuracy {accuracy:.4f}")
    best = min(results, key=lambda r: r["balanced_log_loss"])
    spec = {k: v for k, v in best.items() if k not in ("balanced_log_loss", "accuracy")}
    head = pool.fit_regions(pool.split == 0, spec)
    logits, labels, _ = _region_rows(pool, head, val)
    slope, intercept = measures.fit_platt(logits, labels)
    return spec, head, slope, intercept, results


def region_agreement(
    pool: Pool, head: Head, calibrate: Callable[[np.ndarray], np.ndarray], indices: np.ndarray,
    verdict_ai: np.ndarray,
) -> dict[str, Any]:
    """Share of each map's regions on the side of the image's true label (AI and real images apart), and on
    the side of the image's own verdict (`verdict_ai`, one per index), averaged over images."""
    per_image = [calibrate(logits) >= 0.5 for logits in pool.region_logits(head, indices)]
    labels = pool.labels[indices]
    with_map = np.array([len(sides) > 0 for sides in per_image])
    on_label = np.array([(sides == label).mean() if len(sides) else np.nan
                         for sides, label in zip(per_image, labels, strict=True)])
    on_verdict = np.array([(sides == verdict).mean() if len(sides) else np.nan
                           for sides, verdict in zip(per_image, verdict_ai, strict=True)])

    def mean(values: np.ndarray) -> float | None:
        return round(float(np.mean(values)), 4) if len(values) else None

    return {
        "ai_regions_on_ai_side": mean(on_label[with_map & labels]),
        "real_regions_on_real_side": mean(on_label[with_map & ~labels]),
        "regions_on_the_verdicts_side": mean(on_verdict[with_map]),
        "images": int(with_map.sum()),
    }
