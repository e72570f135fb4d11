"""Inference of the pixel model: several native-resolution crops through the ONNX network, aggregated.

The network (backbone and heads in one ONNX graph) takes crops of CROP_SIZE pixels at native resolution,
never resized: resampling would erase the fine texture it judges. A picture smaller than a crop is
judged through one square crop of its shorter side (the backbone accepts any size from MIN_SIDE up).
The crop logits are averaged, then calibrated (Platt) into P(AI). A model with a family head has a second
output: per-crop generator-family logits, averaged over the crops, tempered and soft-maxed.

Stability: the same read of the picture's messaging-app copy (recompression.social_copy) tells whether
the verdict survives sharing; crops_disagree() tells whether the crops straddle the threshold widely.

Regions (the region map): one centred crop per region (region_crop), read by the graph's region head when the
model has one (output `region_logit`, trained on crops of a region's size, with its own calibration), else by
the verdict's head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from pixelcheck.analysis.detector.recompression import social_copy

CROP_SIZE = 224
REGION_OUTPUT = "region_logit"
MIN_SIDE = 64  # below this there is too little texture for the model to judge
# Share of pixels whose 4-neighbour residual is exactly zero: 0.40 at the 99th percentile of the first
# training pool's crops (6 of 3,576 above 0.6); screenshots and graphics reach 0.7-0.95, where the model
# was never taught.
FLAT_SHARE_LIMIT = 0.6
# Crops "straddle the threshold widely" when one reads at least this surely AI and another this surely real.
CROP_DISAGREEMENT = 0.8
_ANCHORS = ((0.5, 0.5), (0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75), (0.5, 0.25), (0.5, 0.75))


@dataclass(frozen=True)
class FamilyReading:
    """The family head's calibrated probabilities, highest first: ((family id, display name, p), ...)."""

    ranked: tuple[tuple[str, str, float], ...]
    unknown_below: float


@dataclass(frozen=True)
class PixelReading:
    prob_ai: float  # calibrated
    crop_logits: tuple[float, ...]
    agreement: float  # share of crops on the side of the aggregate
    flat_share: float = 0.0  # median share of perfectly flat pixels over the crops
    crop_probs: tuple[float, ...] = ()  # calibrated P(AI) of each crop
    families: FamilyReading | None = None
    social_copy_prob_ai: float | None = None  # the same read of the messaging-app copy

    @property
    def out_of_domain(self) -> bool:
        """True for graphics-like pictures unlike any photograph or generated image the model learned from."""
        return self.flat_share > FLAT_SHARE_LIMIT

    @property
    def crops_disagree(self) -> bool:
        """True when the crops straddle the threshold widely (see crops_disagree())."""
        return crops_disagree(list(self.crop_probs))

    @property
    def flips_when_shared(self) -> bool:
        """True when the messaging-app copy lands on the other side of the threshold."""
        copy = self.social_copy_prob_ai
        return copy is not None and (copy >= 0.5) != (self.prob_ai >= 0.5)


def crops_disagree(crop_probs: list[float]) -> bool:
    """True when one crop reads at least CROP_DISAGREEMENT AI and another at least as surely real."""
    return bool(crop_probs) and max(crop_probs) >= CROP_DISAGREEMENT and min(crop_probs) <= 1 - CROP_DISAGREEMENT


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


def region_crop(box: tuple[int, int, int, int], size: int) -> tuple[int, int, int] | None:
    """The square (x, y, side) read of one (left, top, right, bottom) region: centred, side min(size, the
    region's sides), its corner on the 8-pixel JPEG block grid where the crop still fits; None under MIN_SIDE."""
    left, top, right, bottom = box
    side = min(size, right - left, bottom - top)
    if side < MIN_SIDE:
        return None

    def start(low: int, high: int) -> int:
        centred = low + (high - low - side) // 2
        aligned = centred // 8 * 8
        aligned = aligned + 8 if aligned < low else aligned
        return aligned if aligned + side <= high else centred

    return start(left, right), start(top, bottom), side


def flat_share(crop: np.ndarray) -> float:
    """Share of pixels whose 4-neighbour Laplacian is exactly zero in every channel."""
    pixels = crop.astype(np.int16)
    residual = 4 * pixels[1:-1, 1:-1] - pixels[:-2, 1:-1] - pixels[2:, 1:-1] - pixels[1:-1, :-2] - pixels[1:-1, 2:]
    return float((np.abs(residual).max(axis=2) == 0).mean())


def sigmoid(value: float) -> float:
    """Numerically safe logistic function."""
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, value))))


class PixelModel:
    """The ONNX network with its calibration; run() and score_boxes() are thread-safe (onnxruntime is)."""

    def __init__(
        self,
        weights: bytes,
        calibration: dict[str, float],
        crops: int,
        families: dict[str, Any] | None = None,
        region_calibration: dict[str, float] | None = None,
    ) -> None:
        import onnxruntime  # imported here so that importing the package stays cheap

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one core per analysis; workers scale by process
        options.inter_op_num_threads = 1
        self._session: Any = onnxruntime.InferenceSession(weights, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._slope = float(calibration["slope"])
        self._intercept = float(calibration["intercept"])
        self._crops = crops
        self._families = families if families and len(self._session.get_outputs()) > 1 else None
        names = [output.name for output in self._session.get_outputs()]
        # The region head and its calibration, or the verdict's head and calibration for a model without one.
        region = calibration
        self._region_output = 0
        if REGION_OUTPUT in names and region_calibration:
            region, self._region_output = region_calibration, names.index(REGION_OUTPUT)
        self._region_slope, self._region_intercept = float(region["slope"]), float(region["intercept"])

    def calibrated(self, logit: float) -> float:
        """Raw network logit → calibrated P(AI)."""
        return sigmoid(self._slope * logit + self._intercept)

    def _outputs(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        """Every network output for equally sized H×W×3 uint8 crops, in one batch."""
        batch = np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32)
        return [np.asarray(out, dtype=np.float64) for out in self._session.run(None, {self._input: batch})]

    def _logits(self, crops: list[np.ndarray]) -> np.ndarray:
        """Raw AI-vs-real logits of equally sized H×W×3 uint8 crops, in one batch."""
        return self._outputs(crops)[0].ravel()

    def _family_reading(self, family_logits: np.ndarray) -> FamilyReading | None:
        if self._families is None:
            return None
        scaled = family_logits.mean(axis=0) / float(self._families["temperature"])
        exp = np.exp(scaled - scaled.max())
        probabilities = exp / exp.sum()
        ranked = sorted(
            zip(self._families["ids"], self._families["names"], (float(p) for p in probabilities), strict=True),
            key=lambda entry: -entry[2],
        )
        return FamilyReading(tuple(ranked), float(self._families["unknown_below"]))

    def _crops_of(self, rgb: Image.Image) -> list[np.ndarray]:
        # Only the crops become arrays: converting a 12 MP picture whole would cost more than the model.
        return [
            np.asarray(rgb.crop((x, y, x + s, y + s))) for x, y, s in crop_boxes(rgb.width, rgb.height, self._crops)
        ]

    def run(self, rgb: Image.Image) -> PixelReading | None:
        """Read a decoded RGB picture (and its messaging-app copy); None when it is too small to judge."""
        crops = self._crops_of(rgb)
        if not crops:
            return None
        outputs = self._outputs(crops)
        logits = outputs[0].ravel()
        mean = float(logits.mean())
        agreement = float(np.mean(np.sign(logits) == np.sign(mean))) if mean != 0 else 0.5
        flat = float(np.median([flat_share(crop) for crop in crops]))
        copy_crops = self._crops_of(social_copy(rgb))
        copy_prob = self.calibrated(float(self._logits(copy_crops).mean())) if copy_crops else None
        return PixelReading(
            self.calibrated(mean),
            tuple(float(v) for v in logits),
            agreement,
            flat,
            crop_probs=tuple(self.calibrated(float(v)) for v in logits),
            families=self._family_reading(outputs[1]) if len(outputs) > 1 else None,
            social_copy_prob_ai=copy_prob,
        )

    def score_boxes(self, rgb: Image.Image, boxes: list[tuple[int, int, int, int]], crop_size: int) -> list[float]:
        """Calibrated P(AI) of each (left, top, right, bottom) region of a decoded RGB picture.

        Each region is read through one centred native-resolution crop of at most crop_size pixels
        (region_crop), by the region head with its calibration (see the module docstring). Boxes are clipped to
        the picture; a region under MIN_SIDE pixels on a side gets 0.5 (no opinion). All crops go through the
        network in as few batches as there are crop sizes.
        """
        by_size: dict[int, list[tuple[int, tuple[int, int, int]]]] = {}
        for number, (left, top, right, bottom) in enumerate(boxes):
            clipped = (max(0, left), max(0, top), min(rgb.width, right), min(rgb.height, bottom))
            read = region_crop(clipped, crop_size)
            if read is not None:
                by_size.setdefault(read[2], []).append((number, read))
        probabilities = [0.5] * len(boxes)
        for members in by_size.values():
            crops = [np.asarray(rgb.crop((x, y, x + s, y + s))) for _, (x, y, s) in members]
            logits = self._outputs(crops)[self._region_output].ravel()
            for (number, _), logit in zip(members, logits, strict=True):
                probabilities[number] = sigmoid(self._region_slope * float(logit) + self._region_intercept)
        return probabilities
