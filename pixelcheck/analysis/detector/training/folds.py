"""Leave-one-out folds: how the model does on a generator or a photo source it never saw.

Each fold refits the chosen head (and the family head) without one group and scores that group's images.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pixelcheck.analysis.detector.training.families import family_ids
from pixelcheck.analysis.detector.training.pool import Pool

FOLD_MIN_CROPS = 30  # leave-one-generator-out covers every AI group with at least this many crops
CONFIDENT_FAMILY = 0.8  # a left-out generator named as a wrong family at least this surely is a confident error


def softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax of logits / temperature."""
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def _record(name: str, held: np.ndarray, correct: np.ndarray, other: float, other_name: str) -> dict[str, Any]:
    return {
        "left_out": name,
        "crops": int(held.sum()),
        "accuracy_on_left_out": round(float(correct.mean()), 4),
        other_name: round(other, 4),
    }


def leave_one_generator_out(
    pool: Pool,
    spec: dict[str, Any],
    family_spec: dict[str, Any],
    temperature: float,
    log: Callable[[str], None],
    only: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """Refit without each AI group of ≥ FOLD_MIN_CROPS crops; its recall, the real test accuracy, and how
    often the family head names it as a wrong family with p ≥ CONFIDENT_FAMILY.

    Groups in the shared-prompt gallery are also held out by prompt: their prompts are cut in two halves,
    and each half is scored by a head trained without the group AND without every gallery image of
    those prompts, so neither the generator nor the subjects were seen.
    """
    split = pool.split
    counts = {g: int((pool.groups == g).sum()) for g in np.unique(pool.groups[pool.labels])}
    eligible = sorted(
        (g for g, n in counts.items() if n >= FOLD_MIN_CROPS and (only is None or g in only)),
        key=lambda g: (-counts[g], g),
    )
    real_test = np.where((split == 2) & ~pool.labels)[0]
    rng = np.random.default_rng(pool.seed)
    ids = family_ids()
    folds = []
    for group in eligible:
        held = pool.groups == group
        family = int(pool.families[held][0])
        prompts = sorted(set(pool.prompts[held]) - {""})
        halves = [set(part) for part in np.array_split(rng.permutation(prompts), 2)] if prompts else [set()]
        parts, wrong_family, real_scores = [], [], []
        for number, half in enumerate(halves):
            in_half = np.isin(pool.prompts, list(half)) if half else np.zeros(len(pool.samples), bool)
            scored = np.where(held & (in_half | ((pool.prompts == "") if number == 0 else False)))[0]
            train = (split != 2) & ~held & ~in_half
            head = pool.fit(train, spec)
            parts.append(pool.image_logits(head, scored) > 0)
            real_scores.append(float((pool.image_logits(head, real_test) <= 0).mean()))
            family_head = pool.fit_families(train, family_spec)
            probabilities = softmax(pool.image_logits(family_head, scored), temperature)
            top = probabilities.argmax(axis=1)
            wrong_family.append((top != family) & (probabilities.max(axis=1) >= CONFIDENT_FAMILY))
        fold = _record(group, held, np.concatenate(parts), float(np.mean(real_scores)), "real_test_accuracy")
        fold["family"] = ids[family]
        fold["named_wrong_family_confidently"] = round(float(np.concatenate(wrong_family).mean()), 4)
        fold["held_out_by_prompt_too"] = bool(prompts)
        log(
            f"LOGO {group:>22} crops {fold['crops']:>4}  recall {fold['accuracy_on_left_out']:.3f}  "
            f"real test acc {fold['real_test_accuracy']:.3f}  wrong family p>=0.8 "
            f"{fold['named_wrong_family_confidently']:.3f}{'  (by prompt too)' if prompts else ''}"
        )
        folds.append(fold)
    return folds


def leave_one_real_source_out(
    pool: Pool, spec: dict[str, Any], log: Callable[[str], None], only: frozenset[str] | None = None
) -> list[dict[str, Any]]:
    """Refit without each real photo source (or each of `only`) and measure how many of its photos are called real."""
    ai_test = np.where((pool.split == 2) & pool.labels)[0]
    counts = {
        g: int((pool.groups == g).sum()) for g in np.unique(pool.groups[~pool.labels]) if only is None or g in only
    }
    folds = []
    for group in sorted(counts, key=lambda g: (-counts[g], g)):
        held = pool.groups == group
        head = pool.fit((pool.split != 2) & ~held, spec)
        correct = pool.image_logits(head, np.where(held)[0]) <= 0
        ai_recall = float((pool.image_logits(head, ai_test) > 0).mean())
        fold = _record(group, held, correct, ai_recall, "ai_test_recall")
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
    summary: dict[str, Any] = {
        "folds": folds,
        "mean_accuracy": round(float(np.mean(accuracies)), 4),
        "mean_accuracy_folds_with_30_or_more_crops": round(float(np.mean(large)), 4) if large else None,
        "min_accuracy": worst["accuracy_on_left_out"],
        "min_fold": worst["left_out"],
    }
    confident = [f["named_wrong_family_confidently"] for f in folds if "named_wrong_family_confidently" in f]
    if confident:
        summary["max_named_wrong_family_confidently"] = max(confident)
        summary["folds_over_20_percent_wrong_family"] = [
            f["left_out"] for f in folds if f.get("named_wrong_family_confidently", 0) > 0.2
        ]
    return summary
