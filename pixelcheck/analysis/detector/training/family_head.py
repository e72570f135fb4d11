"""The generator-family head: fitted on AI images, tempered on validation, then made humble on purpose.

fit_family_head() picks the candidate of lowest validation log loss and its softmax temperature;
open_set_temperature() raises that temperature until images of a family the head never saw are rarely
named with confidence; family_metrics() is what the model card and the closing numbers report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pixelcheck.analysis.detector.training import measures
from pixelcheck.analysis.detector.training.families import family_ids
from pixelcheck.analysis.detector.training.folds import softmax
from pixelcheck.analysis.detector.training.pool import Head, Pool

FAMILY_CANDIDATES: list[dict[str, Any]] = [
    {"kind": "mlp", "hidden": 256, "weight_decay": 0.5, "epochs": 8},
]
UNKNOWN_FAMILY_BELOW = 0.5  # a family is named only when its calibrated probability reaches this
# On images of a family the head never saw, at most this share may get a (necessarily wrong) family at p >= 0.8.
OPEN_SET_CONFIDENT_SHARE = 0.15


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


