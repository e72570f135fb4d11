"""The low-level expert's eyes: fixed statistics of a crop's high-pass residuals, beside the backbone's features.

What an ImageNet backbone describes is mostly the subject. What a generator leaves behind is below it: the
periodic pattern of its decoder's upsampling (latent diffusion decodes 8x8 pixels per latent), noise that is
too smooth or too regular, and the absence of a camera's demosaicing, whose colour planes are interpolated
on a 2x2 grid. These statistics look only at neighbouring-pixel differences, never at the picture itself:

- residuals: on luma, the horizontal and vertical first differences, the 4-neighbour Laplacian and the
  horizontal second difference; on each colour plane, the Laplacian;
- for every residual, the 8x8 phase profile of its magnitude (mean |r| at each position modulo 8, divided
  by its overall mean) through a 2-D DFT, as magnitudes: periodic traces at periods 2, 4 and 8, invariant
  to where the crop starts;
- for the luma residuals, the histogram of the rounded residual clipped to ±2 (5 bins) and the
  co-occurrence of neighbouring clipped residuals along the residual's direction (25 pairs), as
  steganalysis reads sensor noise; the log energy and the kurtosis of every residual;
- the correlation of the colour planes' Laplacians (demosaicing ties them together).

Everything is a fixed torch operation (no weights), so it exports into the same ONNX graph as the backbone
and the service computes it exactly as training did. Input: N×3×H×W floats 0..255, H and W ≥ 16; only the
top-left H//8*8 × W//8*8 pixels are read.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PERIOD = 8
CLIP = 2
_LUMA = (0.299, 0.587, 0.114)
LUMA_RESIDUALS = 4  # dx, dy, Laplacian, dxx


def _unique_frequencies() -> list[int]:
    """Flat indices of the 8x8 DFT that are not the DC term nor the conjugate twin of an earlier one."""
    seen: set[tuple[int, int]] = set()
    kept = []
    for u in range(PERIOD):
        for v in range(PERIOD):
            twin = ((-u) % PERIOD, (-v) % PERIOD)
            if (u, v) == (0, 0) or twin in seen:
                continue
            seen.add((u, v))
            kept.append(u * PERIOD + v)
    return kept


FREQUENCIES = _unique_frequencies()  # 33 of the 64
_LUMA_FEATURES = len(FREQUENCIES) + (2 * CLIP + 1) + (2 * CLIP + 1) ** 2 + 2
_COLOUR_FEATURES = len(FREQUENCIES) + 2
RESIDUAL_FEATURE_COUNT = LUMA_RESIDUALS * _LUMA_FEATURES + 3 * _COLOUR_FEATURES + 3


class ResidualStatistics(nn.Module):
    """N×3×H×W pixels 0..255 → N×RESIDUAL_FEATURE_COUNT statistics of their high-pass residuals."""

    luma_weights: torch.Tensor
    dft_cos: torch.Tensor
    dft_sin: torch.Tensor
    frequencies: torch.Tensor
    levels: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("luma_weights", torch.tensor(_LUMA).view(1, 3, 1, 1), persistent=False)
        angles = 2 * np.pi * np.outer(np.arange(PERIOD), np.arange(PERIOD)) / PERIOD
        self.register_buffer("dft_cos", torch.tensor(np.cos(angles), dtype=torch.float32), persistent=False)
        self.register_buffer("dft_sin", torch.tensor(np.sin(angles), dtype=torch.float32), persistent=False)
        self.register_buffer("frequencies", torch.tensor(FREQUENCIES), persistent=False)
        self.register_buffer("levels", torch.arange(-CLIP, CLIP + 1).float(), persistent=False)

    @staticmethod
    def _laplacian(padded: torch.Tensor) -> torch.Tensor:
        """The 4-neighbour Laplacian of each plane of an edge-padded N×C×(H+2)×(W+2) tensor."""
        centre = padded[:, :, 1:-1, 1:-1]
        return (4 * centre - padded[:, :, :-2, 1:-1] - padded[:, :, 2:, 1:-1]
                - padded[:, :, 1:-1, :-2] - padded[:, :, 1:-1, 2:])

    def _residuals(self, padded: torch.Tensor) -> torch.Tensor:
        """N×1×(H+2)×(W+2) edge-padded luma → N×4×H×W: horizontal and vertical first differences, Laplacian,
        horizontal second difference."""
        centre = padded[:, :, 1:-1, 1:-1]
        right, below, left = padded[:, :, 1:-1, 2:], padded[:, :, 2:, 1:-1], padded[:, :, 1:-1, :-2]
        return torch.cat([right - centre, below - centre, self._laplacian(padded), left - 2 * centre + right], dim=1)

    def _periodicity(self, magnitude: torch.Tensor) -> torch.Tensor:
        """N×C×H×W (H, W multiples of 8) → N×C×33 DFT magnitudes of the normalised 8x8 phase profile."""
        n, c, h, w = magnitude.shape
        profile = magnitude.reshape(n, c, h // PERIOD, PERIOD, w // PERIOD, PERIOD).mean(dim=(2, 4))
        profile = profile / (profile.mean(dim=(2, 3), keepdim=True) + 1e-6)
        real = self.dft_cos @ profile @ self.dft_cos - self.dft_sin @ profile @ self.dft_sin
        imaginary = self.dft_cos @ profile @ self.dft_sin + self.dft_sin @ profile @ self.dft_cos
        spectrum = (real * real + imaginary * imaginary + 1e-12).sqrt().reshape(n, c, PERIOD * PERIOD)
        return spectrum.index_select(2, self.frequencies)

    @staticmethod
    def _moments(residual: torch.Tensor) -> torch.Tensor:
        """N×C×H×W → N×C×2: log energy and kurtosis."""
        squared = residual * residual
        energy = squared.mean(dim=(2, 3))
        kurtosis = (squared * squared).mean(dim=(2, 3)) / (energy * energy + 1e-6)
        return torch.stack([torch.log(energy + 1e-3), torch.log1p(kurtosis)], dim=2)

    def _histograms(self, residual: torch.Tensor) -> torch.Tensor:
        """N×4×H×W luma residuals → N×4×(5 + 25): the histogram of the rounded residual clipped to ±2, and the
        co-occurrence of neighbours along the residual's own direction (vertical for dy, horizontal for the
        rest), as products of indicator maps summed over space."""
        n, c = residual.shape[:2]
        clipped = torch.round(residual).clamp(-CLIP, CLIP).unsqueeze(2)
        indicators = (clipped == self.levels.view(1, 1, -1, 1, 1)).float()  # N×C×5×H×W
        histogram = indicators.mean(dim=(3, 4))
        flat = indicators.flatten(3)
        width = residual.shape[3]
        # Neighbours in the flattened map: horizontal pairs include one pair across each row's end.
        rows = flat[:, (0, 2, 3)]
        across = (rows[..., :-1] @ rows[..., 1:].transpose(2, 3)) / (flat.shape[3] - 1)
        column = flat[:, 1:2]
        down = (column[..., :-width] @ column[..., width:].transpose(2, 3)) / (flat.shape[3] - width)
        pairs = torch.cat([across[:, :1], down, across[:, 1:]], dim=1).flatten(2)
        return torch.cat([histogram, pairs], dim=2).reshape(n, c, -1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        h = torch.div(pixels.shape[2], PERIOD, rounding_mode="floor") * PERIOD
        w = torch.div(pixels.shape[3], PERIOD, rounding_mode="floor") * PERIOD
        x = pixels[:, :, :h, :w]
        luma = (x * self.luma_weights).sum(dim=1, keepdim=True)
        luma_residuals = self._residuals(F.pad(luma, (1, 1, 1, 1), mode="replicate"))
        colour_residuals = self._laplacian(F.pad(x, (1, 1, 1, 1), mode="replicate"))
        n = pixels.shape[0]
        luma_part = torch.cat(
            [
                self._periodicity(luma_residuals.abs()),
                self._histograms(luma_residuals),
                self._moments(luma_residuals),
            ],
            dim=2,
        ).reshape(n, -1)
        colour_part = torch.cat(
            [self._periodicity(colour_residuals.abs()), self._moments(colour_residuals)], dim=2
        ).reshape(n, -1)
        centred = colour_residuals - colour_residuals.mean(dim=(2, 3), keepdim=True)
        norms = (centred * centred).mean(dim=(2, 3)).clamp_min(1e-6).sqrt()
        r, g, b = centred[:, 0], centred[:, 1], centred[:, 2]
        correlations = torch.stack(
            [
                (r * g).mean(dim=(1, 2)) / (norms[:, 0] * norms[:, 1]),
                (g * b).mean(dim=(1, 2)) / (norms[:, 1] * norms[:, 2]),
                (r * b).mean(dim=(1, 2)) / (norms[:, 0] * norms[:, 2]),
            ],
            dim=1,
        )
        return torch.cat([luma_part, colour_part, correlations], dim=1)


class PixelFeatures(nn.Module):
    """What the heads read of one crop (a FEATURE_SETS name): columns of the extracted row, which is the backbone's
    features (its pooled head, then its stage statistics) followed by the residual statistics. Extraction
    reads every column; a head trained on a feature set is exported with this module in front of it."""

    columns: torch.Tensor

    def __init__(self, feature_set: str) -> None:
        super().__init__()
        from pixelcheck.analysis.detector.training.backbone import FEATURE_COUNT, load_backbone

        chosen = feature_columns(feature_set)
        self.backbone = load_backbone() if chosen.min() < FEATURE_COUNT else None
        self.residuals = ResidualStatistics() if chosen.max() >= FEATURE_COUNT else None
        offset = 0 if self.backbone is not None else FEATURE_COUNT
        self.register_buffer("columns", torch.from_numpy(chosen - offset), persistent=False)
        self.every_column = len(chosen) == FEATURE_COUNT * (self.backbone is not None) + RESIDUAL_FEATURE_COUNT * (
            self.residuals is not None
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.backbone is not None:
            parts.append(self.backbone(pixels))
        if self.residuals is not None:
            parts.append(self.residuals(pixels))
        features = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        return features if self.every_column else features.index_select(1, self.columns)


# backbone: everything the frozen Lite0 gives; texture: only its six stages' statistics (without the pooled
# head, which describes the subject); residuals: the low-level expert alone; and the two side by side.
FEATURE_SETS = ("backbone", "texture", "residuals", "backbone+residuals", "texture+residuals")


def feature_columns(feature_set: str) -> np.ndarray:
    """The columns of an extracted (backbone + residuals) feature row that a feature set reads."""
    from pixelcheck.analysis.detector.training.backbone import FEATURE_COUNT, HEAD_CHANNELS

    parts = {
        "backbone": np.arange(FEATURE_COUNT),
        "texture": np.arange(HEAD_CHANNELS, FEATURE_COUNT),
        "residuals": np.arange(FEATURE_COUNT, FEATURE_COUNT + RESIDUAL_FEATURE_COUNT),
    }
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"feature set {feature_set!r} is not one of {', '.join(FEATURE_SETS)}")
    return np.concatenate([parts[name] for name in feature_set.split("+")])
