"""The trained parts of the pixel model, on standardised backbone features of one crop each.

- `LinearHead`: L2 logistic regression (AI vs real). Seconds to fit, which keeps per-fold refits cheap.
- `MlpHead`: one hidden ReLU layer with dropout and weight decay, trained with AdamW (torch).
- `FamilyHead`: multinomial logistic regression over generator families, fitted on AI images only.
Every head has `logits()` for numpy rows and `module()` for the ONNX export (standardisation folded in).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression


def _standardiser(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(axis=0), features.std(axis=0) + 1e-6


@dataclass(frozen=True)
class LinearHead:
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # F (binary) or K×F (families)
    intercept: np.ndarray  # () or K

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Raw logits of N×F features: N for a binary head (positive = AI), N×K for families."""
        return ((features - self.mean) / self.scale) @ self.coef.T + self.intercept

    def module(self) -> Any:
        """The head as a torch Linear layer with the standardisation folded in."""
        import torch
        from torch import nn

        coef = np.atleast_2d(self.coef)
        weight = coef / self.scale
        bias = np.atleast_1d(self.intercept) - (self.mean / self.scale) @ coef.T
        layer = nn.Linear(coef.shape[1], coef.shape[0])
        layer.weight.data = torch.from_numpy(weight.astype(np.float32))
        layer.bias.data = torch.from_numpy(bias.astype(np.float32))
        return layer


ABSENT_CLASS_LOGIT = -30.0  # a class without training rows gets this logit: effectively never predicted


def fit_linear(
    features: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    c: float,
    seed: int,
    classes: int | None = None,
) -> LinearHead:
    """L2-regularised logistic regression with row weights: binary (boolean labels), or multinomial over
    `classes` integer labels — classes missing from the rows get zero weights and ABSENT_CLASS_LOGIT."""
    mean, scale = _standardiser(features)
    model = LogisticRegression(C=c, max_iter=300, tol=1e-4, random_state=seed)
    model.fit((features - mean) / scale, labels.astype(int), sample_weight=weights * len(weights) / weights.sum())
    if classes is None:
        return LinearHead(mean, scale, model.coef_[0].astype(np.float64), np.float64(model.intercept_[0]))
    coef = np.zeros((classes, features.shape[1]))
    intercept = np.full(classes, ABSENT_CLASS_LOGIT)
    present = model.classes_.astype(int)
    if len(present) == 2:  # scikit-learn stores one row for two classes: logit of the second
        coef[present[1]], intercept[present[1]] = model.coef_[0] / 2, model.intercept_[0] / 2
        coef[present[0]], intercept[present[0]] = -model.coef_[0] / 2, -model.intercept_[0] / 2
    else:
        coef[present], intercept[present] = model.coef_, model.intercept_
    return LinearHead(mean, scale, coef, intercept)


class MlpHead:
    """Standardise → Linear(F, hidden) → ReLU → Dropout → Linear(hidden, outputs) (1 = AI vs real, K = families)."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, network: Any) -> None:
        self.mean = mean
        self.scale = scale
        self.network = network.eval()

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Raw logits of N×F features: N (positive = AI) for one output, N×K for K."""
        import torch

        with torch.no_grad():
            standard = torch.from_numpy(((features - self.mean) / self.scale).astype(np.float32))
            out = np.concatenate([self.network(chunk).double().numpy() for chunk in torch.split(standard, 8192)])
        return out[:, 0] if out.shape[1] == 1 else out

    def module(self) -> Any:
        """The head as one torch module with the standardisation folded into its first layer."""
        import copy

        import torch

        network = copy.deepcopy(self.network).eval()
        first = network[0]
        weight = first.weight.data.double().numpy()
        folded = weight / self.scale
        first.weight.data = torch.from_numpy(folded.astype(np.float32))
        first.bias.data = torch.from_numpy(
            (first.bias.data.double().numpy() - folded @ self.mean).astype(np.float32)
        )
        return network


def fit_mlp(
    features: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    *,
    hidden: int,
    weight_decay: float,
    epochs: int,
    seed: int,
    classes: int | None = None,
) -> MlpHead:
    """A one-hidden-layer network trained with AdamW and a cosine schedule on weighted binary cross-entropy
    (boolean labels), or on weighted cross-entropy over `classes` integer labels."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    mean, scale = _standardiser(features)
    x = torch.from_numpy(((features - mean) / scale).astype(np.float32))
    y = torch.from_numpy(labels.astype(np.int64 if classes else np.float32))
    w = torch.from_numpy((weights * len(weights) / weights.sum()).astype(np.float32))
    outputs = classes or 1
    network = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.ReLU(), nn.Dropout(0.3), nn.Linear(hidden, outputs))
    optimiser = torch.optim.AdamW(network.parameters(), lr=1e-3, weight_decay=weight_decay)
    batch = 256
    steps = epochs * ((len(x) + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    generator = torch.Generator().manual_seed(seed)
    loss_function = nn.CrossEntropyLoss(reduction="none") if classes else nn.BCEWithLogitsLoss(reduction="none")
    network.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch):
            index = order[start : start + batch]
            noisy = x[index] + 0.1 * torch.randn(len(index), x.shape[1], generator=generator)
            out = network(noisy)
            loss = (loss_function(out if classes else out.squeeze(1), y[index]) * w[index]).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    return MlpHead(mean, scale, network)
