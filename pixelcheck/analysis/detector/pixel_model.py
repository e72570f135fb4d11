"""Inference of the pixel model: several native-resolution crops through the ONNX network, aggregated."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

CROP_SIZE = 256
MIN_SIDE = 64  # below this there is too little texture for the residual model to judge
# Share of pixels whose 4-neighbour residual is exactly zero: 0.40 at the 99th percentile of the training
# crops (6 of 3,576 above 0.6); screenshots and graphics reach 0.7-0.95, where the model was never taught.
FLAT_SHARE_LIMIT = 0.6
_ANCHORS = ((0.5, 0.5), (0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75), (0.5, 0.25), (0.5, 0.75))


@dataclass(frozen=True)
class PixelReading:
    prob_ai: float  # calibrated
    crop_logits: tuple[float, ...]
    agreement: float  # share of crops on the side of the aggregate
    flat_share: float = 0.0  # median share of perfectly flat pixels over the crops

    @property
    def out_of_domain(self) -> bool:
        """True for graphics-like pictures unlike any photograph or generated image the model learned from."""
        return self.flat_share > FLAT_SHARE_LIMIT


def crop_boxes(width: int, height: int, count: int) -> list[tuple[int, int, int]]:
    """Up to `count` distinct square crops (x, y, size) at native resolution, 8-aligned, spread over the image."""
    size = min(CROP_SIZE, width, height)
    if size < MIN_SIDE:
        return []
    boxes: list[tuple[int, int, int]] = []
    for ax, ay in _ANCHORS:
        x = int(min(max(ax * width - size / 2, 0), width - size)) // 8 * 8
        y = int(min(max(ay * height - size / 2, 0), height - size)) // 8 * 8
        if (x, y, size) not in boxes:
            boxes.append((x, y, size))
        if len(boxes) == count:
            break
    return boxes


def flat_share(crop: np.ndarray) -> float:
    """Share of pixels whose 4-neighbour Laplacian is exactly zero in every channel."""
    pixels = crop.astype(np.int16)
    residual = 4 * pixels[1:-1, 1:-1] - pixels[:-2, 1:-1] - pixels[2:, 1:-1] - pixels[1:-1, :-2] - pixels[1:-1, 2:]
    return float((np.abs(residual).max(axis=2) == 0).mean())


def sigmoid(value: float) -> float:
    """Numerically safe logistic function."""
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, value))))


class PixelModel:
    """The ONNX network with its calibration; run() is thread-safe (onnxruntime sessions are)."""

    def __init__(self, weights: bytes, calibration: dict[str, float], crops: int) -> None:
        import onnxruntime  # imported here so that importing the package stays cheap

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one core per analysis; workers scale by process
        options.inter_op_num_threads = 1
        self._session: Any = onnxruntime.InferenceSession(weights, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._slope = float(calibration["slope"])
        self._intercept = float(calibration["intercept"])
        self._crops = crops

    def calibrated(self, logit: float) -> float:
        """Raw network logit → calibrated P(AI)."""
        return sigmoid(self._slope * logit + self._intercept)

    def run(self, rgb: Image.Image) -> PixelReading | None:
        """Read a decoded RGB picture; None when it is too small to judge."""
        boxes = crop_boxes(rgb.width, rgb.height, self._crops)
        if not boxes:
            return None
        # Only the crops become arrays: converting a 12 MP picture whole would cost more than the model.
        crops = [np.asarray(rgb.crop((x, y, x + s, y + s))) for x, y, s in boxes]
        batch = np.stack(crops).transpose(0, 3, 1, 2)
        logits = self._session.run(None, {self._input: batch.astype(np.float32)})[0].astype(np.float64).ravel()
        mean = float(logits.mean())
        agreement = float(np.mean(np.sign(logits) == np.sign(mean))) if mean != 0 else 0.5
        flat = float(np.median([flat_share(crop) for crop in crops]))
        return PixelReading(self.calibrated(mean), tuple(float(v) for v in logits), agreement, flat)

    def score_boxes(self, rgb: Image.Image, boxes: list[tuple[int, int, int, int]]) -> list[float]:
        """Calibrated P(AI) of each (left, top, right, bottom) box: its central window of at most
        CROP_SIZE per side at native resolution (even-aligned, as the network's 2x2 residual wants)."""
        windows: list[tuple[int, int, int, int]] = []
        for left, top, right, bottom in boxes:
            width, height = min(CROP_SIZE, right - left) // 2 * 2, min(CROP_SIZE, bottom - top) // 2 * 2
            x = (left + (right - left - width) // 2) // 2 * 2
            y = (top + (bottom - top - height) // 2) // 2 * 2
            windows.append((x, y, width, height))
        scores = [0.5] * len(boxes)
        by_shape: dict[tuple[int, int], list[int]] = {}
        for index, (_, _, width, height) in enumerate(windows):
            by_shape.setdefault((width, height), []).append(index)
        for (width, height), indices in by_shape.items():
            if min(width, height) < 2:
                continue  # nothing to read: a degenerate box stays at 0.5
            for start in range(0, len(indices), 16):  # 16 crops of 256² are ~12 MB of floats
                chunk = indices[start : start + 16]
                crops = [np.asarray(rgb.crop((windows[i][0], windows[i][1], windows[i][0] + width,
                                              windows[i][1] + height))) for i in chunk]
                batch = np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32)
                logits = self._session.run(None, {self._input: batch})[0].astype(np.float64).ravel()
                for i, logit in zip(chunk, logits, strict=True):
                    scores[i] = self.calibrated(float(logit))
        return scores
