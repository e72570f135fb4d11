"""The invisible-watermark package's own dwtDct encoder, loaded without torch.

The package's watermark module imports its rivaGan method, which needs torch; dwtDct never touches it,
so a stand-in module takes its place before the import. Tests skip when the package is not installed.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest


def encoders() -> tuple[type, type]:
    """(WatermarkEncoder, WatermarkDecoder) of the installed package; skips the test when it is absent."""
    pytest.importorskip("cv2", reason="opencv-python-headless is installed by scripts/test")
    pytest.importorskip("pywt", reason="PyWavelets is installed by scripts/test")
    if "imwatermark.rivaGan" not in sys.modules:
        sys.modules["imwatermark.rivaGan"] = types.ModuleType("imwatermark.rivaGan")
        sys.modules["imwatermark.rivaGan"].RivaWatermark = None  # type: ignore[attr-defined]
    package = pytest.importorskip("imwatermark", reason="invisible-watermark is installed by scripts/test")
    return package.WatermarkEncoder, package.WatermarkDecoder


def mark_like_sd1(rgb: np.ndarray, message: bytes = b"StableDiffusionV1") -> np.ndarray:
    """What the Stable Diffusion 1.x/2.x scripts do: RGB to BGR, dwtDct with the bytes, back to RGB."""
    import cv2

    encoder_class, _ = encoders()
    encoder = encoder_class()
    encoder.set_watermark("bytes", message)
    return np.ascontiguousarray(encoder.encode(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), "dwtDct")[:, :, ::-1])


def mark_like_sdxl(rgb: np.ndarray, bits: tuple[int, ...], *, flip_to_bgr: bool) -> np.ndarray:
    """What the SDXL pipelines do: float pixels, dwtDct with 48 bits; older diffusers passed RGB unflipped."""
    encoder_class, _ = encoders()
    encoder = encoder_class()
    encoder.set_watermark("bits", list(bits))
    pixels = rgb[:, :, ::-1] if flip_to_bgr else rgb
    marked = encoder.encode(np.ascontiguousarray(pixels).astype(np.float32), "dwtDct")
    marked = marked[:, :, ::-1] if flip_to_bgr else marked
    return np.clip(np.rint(marked), 0, 255).astype(np.uint8)
