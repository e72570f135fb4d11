"""The pixel model: a small fully convolutional network over high-pass residuals, and its training loop.

The network sees the image minus a 3×3 local mean, so content and colour are mostly gone before the
first learned layer; global average pooling makes it accept any crop size, so it trains on random
128-pixel crops and scores 256-pixel crops at inference.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from pixelcheck.analysis.detector.training.augment import random_processing

TRAIN_CROP = 128


class ResidualNet(nn.Module):
    """High-pass input, one full-resolution layer, four strided layers, global pooling, one logit."""

    def __init__(self, widths: Sequence[int] = (16, 24, 48, 64, 96)) -> None:
        super().__init__()
        self.local_mean = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        layers: list[nn.Module] = [
            nn.Conv2d(6, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        ]
        for before, after in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Conv2d(before, after, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(after), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], 1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels: N×3×H×W floats in 0..255 → N logits (positive = AI)."""
        high_pass = pixels - self.local_mean(pixels)
        # Neighbouring-pixel relation: each pixel minus the top-left pixel of its 2×2 cell (upsampling traces).
        height, width = pixels.shape[2] // 2 * 2, pixels.shape[3] // 2 * 2
        even = pixels[:, :, :height, :width]
        anchor = even[:, :, ::2, ::2].repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        neighbour = even - anchor
        residual = torch.cat([high_pass[:, :, :height, :width], neighbour], dim=1) / 8.0
        pooled = self.features(residual).mean(dim=(2, 3))
        return self.head(pooled).squeeze(1)


def _random_crop(array: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random size×size window (the whole array, padded by reflection, when it is smaller)."""
    height, width = array.shape[:2]
    if height < size or width < size:
        array = np.pad(array, ((0, max(0, size - height)), (0, max(0, size - width)), (0, 0)), mode="reflect")
        height, width = array.shape[:2]
    y = int(rng.integers(0, (height - size) // 2 + 1)) * 2  # even offsets keep the 2×2 pixel grid in phase
    x = int(rng.integers(0, (width - size) // 2 + 1)) * 2
    return array[y : y + size, x : x + size]


def _batch(images: Sequence[np.ndarray]) -> torch.Tensor:
    """Stack equally sized H×W×3 uint8 arrays into an N×3×H×W float tensor."""
    return torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).astype(np.float32))


def train_network(
    images: Sequence[np.ndarray],
    labels: np.ndarray,
    weights: np.ndarray,
    *,
    epochs: int,
    seed: int,
    batch_size: int = 32,
    log: Callable[[str], None] = print,
) -> ResidualNet:
    """Train on randomly processed, randomly cropped images; samples are drawn in proportion to weights."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = ResidualNet()
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps_per_epoch = max(1, len(images) // batch_size)
    total_steps = epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    )
    probabilities = weights / weights.sum()
    loss_function = nn.BCEWithLogitsLoss()
    for epoch in range(epochs):
        model.train()
        started, running = time.perf_counter(), 0.0
        for _ in range(steps_per_epoch):
            indices = rng.choice(len(images), size=batch_size, p=probabilities)
            crops = [
                _random_crop(np.asarray(random_processing(Image.fromarray(images[i]), rng)), TRAIN_CROP, rng)
                for i in indices
            ]
            logits = model(_batch(crops))
            loss = loss_function(logits, torch.from_numpy(labels[indices].astype(np.float32)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            running += float(loss.detach())
        log(f"epoch {epoch + 1}/{epochs}: loss {running / steps_per_epoch:.4f} ({time.perf_counter() - started:.0f} s)")
    model.eval()
    return model


@torch.no_grad()
def predict_logits(model: ResidualNet, images: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
    """Logits for whole images, batched by equal size."""
    model.eval()
    out = np.zeros(len(images), dtype=np.float64)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        by_shape.setdefault(image.shape, []).append(index)
    for indices in by_shape.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            out[chunk] = model(_batch([images[i] for i in chunk])).numpy()
    return out


def export_onnx(model: ResidualNet, path: str) -> None:
    """Write the network as ONNX with dynamic batch and crop size, for onnxruntime at inference."""
    model.eval()
    example = torch.zeros(1, 3, 256, 256)
    torch.onnx.export(
        model,
        (example,),
        path,
        input_names=["pixels"],
        output_names=["logit"],
        dynamic_axes={"pixels": {0: "batch", 2: "height", 3: "width"}, "logit": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
