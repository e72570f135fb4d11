"""The low-level expert's statistics: they see upsampling traces, not where a crop starts, and the ONNX graph the
service runs computes exactly what training computed."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="the training extra (torch) is not installed; scripts/train-detector installs it"
)
onnxruntime = pytest.importorskip("onnxruntime")

from pixelcheck.analysis.detector.training.residuals import (  # noqa: E402
    FREQUENCIES,
    PERIOD,
    RESIDUAL_FEATURE_COUNT,
    ResidualStatistics,
)


def _statistics(pixels: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return ResidualStatistics()(torch.from_numpy(pixels.astype(np.float32))).numpy()


def _noise(rng: np.random.Generator, side: int, upscale: int = 1) -> np.ndarray:
    """1×3×side×side grey noise around mid-grey, optionally made at 1/upscale size and enlarged by repetition."""
    small = rng.normal(128, 20, (side // upscale, side // upscale))
    big = np.repeat(np.repeat(small, upscale, axis=0), upscale, axis=1)
    return np.clip(np.stack([big] * 3)[None], 0, 255)


def _periodicity(features: np.ndarray) -> np.ndarray:
    """The first luma residual's (horizontal difference) 33 DFT magnitudes."""
    return features[0, : len(FREQUENCIES)]


def test_every_crop_gets_the_documented_number_of_statistics_at_any_size() -> None:
    rng = np.random.default_rng(1)
    for height, width in ((224, 224), (128, 128), (100, 90), (64, 200)):
        assert _statistics(rng.integers(0, 256, (2, 3, height, width))).shape == (2, RESIDUAL_FEATURE_COUNT)


def test_a_picture_enlarged_from_half_size_shows_a_period_two_trace_that_camera_like_noise_lacks() -> None:
    rng = np.random.default_rng(2)
    nyquist = FREQUENCIES.index(0 * PERIOD + PERIOD // 2)  # horizontal period 2
    plain = _periodicity(_statistics(_noise(rng, 128)))[nyquist]
    enlarged = _periodicity(_statistics(_noise(rng, 128, upscale=2)))[nyquist]
    assert enlarged > 10 * max(plain, 0.05)


def test_the_periodicity_reading_does_not_depend_on_where_the_crop_starts() -> None:
    rng = np.random.default_rng(3)
    picture = _noise(rng, 160, upscale=4)
    first = _periodicity(_statistics(picture[:, :, :128, :128]))
    shifted = _periodicity(_statistics(picture[:, :, 3:131, 5:133]))
    assert first.max() > 30  # the period-4 trace dominates
    np.testing.assert_allclose(first, shifted, atol=0.05 * first.max())


def test_the_exported_graph_computes_what_training_computes() -> None:
    from pixelcheck.analysis.detector.training.backbone import onnx_bytes

    session = onnxruntime.InferenceSession(onnx_bytes(ResidualStatistics(), "residuals"),
                                           providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(4)
    for height, width in ((224, 224), (96, 136)):
        pixels = rng.integers(0, 256, (3, 3, height, width)).astype(np.float32)
        exported = session.run(None, {"pixels": pixels})[0]
        np.testing.assert_allclose(exported, _statistics(pixels), rtol=1e-4, atol=1e-4)
