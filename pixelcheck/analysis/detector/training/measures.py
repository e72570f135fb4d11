"""Metrics and calibration for a binary AI-vs-real scorer: accuracy, ROC AUC, F1, ECE, Platt scaling, bands."""

from __future__ import annotations

import numpy as np

from pixelcheck.analysis.detector.evaluation import binned_calibration_error, expected_calibration_error


def sigmoid(values: np.ndarray) -> np.ndarray:
    """Elementwise logistic function."""
    return 1.0 / (1.0 + np.exp(-np.clip(values, -60, 60)))


def fit_platt(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Slope and intercept so that σ(slope·logit + intercept) is calibrated on these examples."""
    from sklearn.linear_model import LogisticRegression  # the train extra; the band rule below needs none

    model = LogisticRegression(C=1e4, max_iter=1000).fit(logits.reshape(-1, 1), labels.astype(int))
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def summary(probabilities: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict[str, float | None]:
    """accuracy, roc_auc (None with one class only), f1 (AI as positive) and ece of calibrated probabilities."""
    from sklearn.metrics import f1_score, roc_auc_score

    predicted = probabilities >= threshold
    both = len(np.unique(labels)) == 2
    return {
        "accuracy": round(float((predicted == labels.astype(bool)).mean()), 4),
        "roc_auc": round(float(roc_auc_score(labels, probabilities)), 4) if both else None,
        "f1": round(float(f1_score(labels.astype(int), predicted.astype(int), zero_division=0)), 4),
        "ece": round(expected_calibration_error(probabilities, labels), 4),
        "n": int(len(labels)),
    }


def wilson_lower(correct: int, total: int, z: float = 1.645) -> float:
    """One-sided 95% lower confidence bound of a proportion (Wilson score interval)."""
    if total == 0:
        return 0.0
    share = correct / total
    centre = share + z * z / (2 * total)
    margin = z * np.sqrt(share * (1 - share) / total + z * z / (4 * total * total))
    return float((centre - margin) / (1 + z * z / total))


def choose_bands(
    probabilities: np.ndarray,
    labels: np.ndarray,
    high_precision: float = 0.97,
    medium_precision: float = 0.85,
) -> dict[str, float]:
    """Lowest confidence cut-offs at which the predictions above them are right often enough on validation.

    "Often enough" is judged by the one-sided 95% lower bound of the accuracy above the cut, not by the
    accuracy itself, so a band cannot rest on a handful of lucky images: 20 of 20 right gives a bound
    of 0.88, 300 of 303 one of 0.975.
    """
    predicted = probabilities >= 0.5
    confidence = np.where(predicted, probabilities, 1 - probabilities)
    correct = predicted == labels.astype(bool)
    grid = np.round(np.arange(0.55, 0.995, 0.005), 3)

    def lowest(target: float, floor: float) -> float:
        for cut in grid:
            chosen = confidence >= cut
            if cut >= floor and wilson_lower(int(correct[chosen].sum()), int(chosen.sum())) >= target:
                return float(cut)
        return 0.995

    high = lowest(high_precision, 0.75)
    return {"high": high, "medium": min(lowest(medium_precision, 0.6), high)}


def band_report(probabilities: np.ndarray, labels: np.ndarray, bands: dict[str, float]) -> dict[str, float | None]:
    """Coverage and accuracy (None when a band is empty) of each band on a set of examples."""
    predicted = probabilities >= 0.5
    confidence = np.where(predicted, probabilities, 1 - probabilities)
    correct = predicted == labels.astype(bool)
    out: dict[str, float | None] = {}
    for name, low, high in (
        ("high", bands["high"], 2.0),
        ("medium", bands["medium"], bands["high"]),
        ("low", 0.0, bands["medium"]),
    ):
        inside = (confidence >= low) & (confidence < high)
        out[f"{name}_coverage"] = round(float(inside.mean()), 4)
        out[f"{name}_accuracy"] = round(float(correct[inside].mean()), 4) if inside.any() else None
    return out


def top_label_ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """ECE of a multi-class prediction: |accuracy - mean confidence| of the top label over equal-width bins."""
    return binned_calibration_error(confidence, correct, np.linspace(0.0, 1.0, bins + 1))
