"""The training pool in memory: samples, split, generator families and the cached per-crop features.

Everything a head is fitted on or scored with goes through here, so that training, validation, test and
the leave-one-out folds read images exactly as the service does: one logit per crop, the image's logit
the mean over its crops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pixelcheck.analysis.detector.training.dataset import Sample, shared_prompt
from pixelcheck.analysis.detector.training.families import family_ids, family_of
from pixelcheck.analysis.detector.training.features import AUGMENTED_PER_IMAGE, FeatureTable
from pixelcheck.analysis.detector.training.head import LinearHead, MlpHead, fit_linear, fit_mlp

Head = LinearHead | MlpHead


def balanced_weights(samples: list[Sample], mask: np.ndarray, by: np.ndarray | None = None) -> np.ndarray:
    """Per-image weights: each group's share grows with √size, and every class of `by` (default: AI or
    real) weighs the same in total."""
    weights = np.zeros(len(samples))
    groups = np.array([s.group for s in samples])
    classes = np.array([s.is_ai for s in samples]) if by is None else by
    for group in np.unique(groups[mask]):
        inside = mask & (groups == group)
        weights[inside] = 1.0 / np.sqrt(inside.sum())
    for value in np.unique(classes[mask]):
        inside = mask & (classes == value)
        weights[inside] /= weights[inside].sum()
    return weights


def mean_by_owner(values: np.ndarray, owners: np.ndarray, count: int) -> np.ndarray:
    """Mean of the rows (or values) belonging to each of `count` owners (NaN for owners without rows)."""
    shape = (count, *values.shape[1:])
    total = np.zeros(shape)
    np.add.at(total, owners, values)
    seen = np.bincount(owners, minlength=count).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / seen.reshape(-1, *([1] * (values.ndim - 1)))


class Pool:
    """Samples, labels, groups, families and features; fit() trains a head on any subset of images."""

    def __init__(self, samples: list[Sample], table: FeatureTable, split: np.ndarray, seed: int) -> None:
        self.samples = samples
        self.table = table
        self.split = split
        self.seed = seed
        self.labels = np.array([s.is_ai for s in samples])
        self.groups = np.array([s.group for s in samples])
        self.prompts = np.array([shared_prompt(s) or "" for s in samples])
        ids = family_ids()
        self.families = np.array([ids.index(family_of(s.group)) if s.is_ai else -1 for s in samples])
        self.clean, self.clean_owner = table.rows("clean")
        self.augmented, self.augmented_owner = table.rows("augmented")
        self.mean_clean = mean_by_owner(self.clean, self.clean_owner, len(samples)).astype(np.float32)

    def _rows(self, indices: np.ndarray, weights: np.ndarray, per_crop: bool) -> tuple[np.ndarray, ...]:
        """(features, image index, row weight): clean rows (per crop or the crop mean) + augmented rows,
        each image's weight shared equally between its clean reading and its augmented rows."""
        chosen = np.zeros(len(self.samples), bool)
        chosen[indices] = True
        share = weights / (1 + AUGMENTED_PER_IMAGE)
        if per_crop:
            keep = chosen[self.clean_owner]
            counts = np.bincount(self.clean_owner, minlength=len(self.samples))
            clean, owner = self.clean[keep], self.clean_owner[keep]
            clean_weight = share[owner] / counts[owner]
        else:
            clean, owner = self.mean_clean[indices], indices
            clean_weight = share[indices]
        keep = chosen[self.augmented_owner]
        features = np.concatenate([clean, self.augmented[keep]])
        owners = np.concatenate([owner, self.augmented_owner[keep]])
        return features, owners, np.concatenate([clean_weight, share[self.augmented_owner[keep]]])

    def fit(self, mask: np.ndarray, spec: dict[str, Any]) -> Head:
        """Binary head of the kind `spec` names, trained on the images selected by mask."""
        indices = np.where(mask)[0]
        weights = balanced_weights(self.samples, mask)
        features, owners, row_weights = self._rows(indices, weights, per_crop=spec["kind"] == "mlp")
        return _fit(features, self.labels[owners], row_weights, spec, self.seed)

    def fit_regions(self, mask: np.ndarray, spec: dict[str, Any]) -> Head:
        """Region head: trained on the region-map crops (`regions` rows) of the images selected by mask, each
        image's weight shared equally between its regions."""
        features, owners = self.table.rows("regions")
        keep = mask[owners]
        features, owners = features[keep], owners[keep]
        counts = np.bincount(owners, minlength=len(self.samples))
        weights = balanced_weights(self.samples, mask)[owners] / counts[owners]
        return _fit(features, self.labels[owners], weights, spec, self.seed)

    def fit_families(self, mask: np.ndarray, spec: dict[str, Any]) -> Head:
        """Family head trained on the AI images selected by mask (groups weighted by √size, families equal)."""
        mask = mask & self.labels
        indices = np.where(mask)[0]
        weights = balanced_weights(self.samples, mask, by=self.families)
        features, owners, row_weights = self._rows(indices, weights, per_crop=spec["kind"] == "mlp")
        classes = len(family_ids())
        if spec["kind"] == "linear":
            return fit_linear(features.astype(np.float64), self.families[owners], row_weights, spec["c"], self.seed,
                              classes=classes)
        return fit_mlp(
            features,
            self.families[owners],
            row_weights,
            hidden=spec["hidden"],
            weight_decay=spec["weight_decay"],
            epochs=spec["epochs"],
            seed=self.seed,
            classes=classes,
        )

    def image_logits(self, head: Head, indices: np.ndarray, kind: str = "clean") -> np.ndarray:
        """Per-image mean crop logits (N, or N×K for the family head) of one row kind for these images."""
        features, owners = (self.clean, self.clean_owner) if kind == "clean" else self.table.rows(kind)
        chosen = np.isin(owners, indices)
        logits = head.logits(features[chosen].astype(np.float64))
        means = mean_by_owner(logits, owners[chosen], len(self.samples))
        return means[indices]

    def crop_logits(self, head: Head, indices: np.ndarray) -> list[np.ndarray]:
        """Each image's clean crop logits (the service's crops), for the crop-agreement rule."""
        chosen = np.isin(self.clean_owner, indices)
        logits = head.logits(self.clean[chosen].astype(np.float64))
        owners = self.clean_owner[chosen]
        return [logits[owners == i] for i in indices]

    def region_logits(self, head: Head, indices: np.ndarray) -> list[np.ndarray]:
        """The logit of each region of each image's region map (one row per region), for these images."""
        features, owners = self.table.rows("regions")
        chosen = np.isin(owners, indices)
        logits = head.logits(features[chosen].astype(np.float64))
        owners = owners[chosen]
        return [logits[owners == i] for i in indices]


def _fit(features: np.ndarray, labels: np.ndarray, weights: np.ndarray, spec: dict[str, Any], seed: int) -> Head:
    """A binary head of the kind `spec` names on these rows."""
    if spec["kind"] == "linear":
        return fit_linear(features.astype(np.float64), labels, weights, spec["c"], seed)
    return fit_mlp(
        features, labels, weights, hidden=spec["hidden"], weight_decay=spec["weight_decay"], epochs=spec["epochs"],
        seed=seed,
    )


def choose(
    pool: Pool, candidates: list[dict[str, Any]], log: Callable[[str], None]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The candidate head with the lowest group-balanced log loss on validation (image-level mean logits)."""
    val = np.where(pool.split == 1)[0]
    weights = balanced_weights(pool.samples, pool.split == 1)[val]
    y = pool.labels[val]
    results = []
    for spec in candidates:
        p = 1 / (1 + np.exp(-np.clip(pool.image_logits(pool.fit(pool.split == 0, spec), val), -60, 60)))
        loss = float(-(weights * np.log(np.where(y, p, 1 - p).clip(1e-6))).sum() / weights.sum())
        accuracy = float(((p >= 0.5) == y).mean())
        results.append({**spec, "balanced_log_loss": round(loss, 4), "accuracy": round(accuracy, 4)})
        log(f"head {spec}: validation balanced log loss {loss:.4f}, accuracy {accuracy:.4f}")
    best = min(results, key=lambda r: r["balanced_log_loss"])
    return {k: v for k, v in best.items() if k not in ("balanced_log_loss", "accuracy")}, results
