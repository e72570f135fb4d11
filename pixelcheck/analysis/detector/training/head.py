"""The trained part of the pixel model: a logistic regression on standardised backbone features.

Fitting is a few seconds on a few thousand rows, which makes per-fold refits (leave one generator or
one photo source out) cheap. For export the standardisation is folded into the linear layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression


@dataclass(frozen=True)
class Head:
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Raw logits (positive = AI) of N×F features."""
        return ((features - self.mean) / self.scale) @ self.coef + self.intercept

    def folded(self) -> tuple[np.ndarray, float]:
        """(weight, bias) with logit = features · weight + bias, standardisation included."""
        weight = self.coef / self.scale
        return weight, float(self.intercept - (self.mean / self.scale) @ self.coef)


def fit_head(features: np.ndarray, labels: np.ndarray, weights: np.ndarray, c: float, seed: int) -> Head:
    """L2-regularised logistic regression with per-row sample weights (normalised to mean 1)."""
    mean = features.mean(axis=0)
    scale = features.std(axis=0) + 1e-6
    standard = (features - mean) / scale
    model = LogisticRegression(C=c, max_iter=300, tol=1e-4, random_state=seed)
    model.fit(standard, labels.astype(int), sample_weight=weights * len(weights) / weights.sum())
    return Head(mean, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0]))
