"""Random processing applied to training crops so the model cannot learn the processing history.

Real photos in most pools were JPEG-compressed more often than generated images, and sizes differ; a
model would happily learn that instead of synthesis traces. Re-encoding, resizing and blurring at
random makes those cues useless. The fixed transforms are the ones the robustness table measures.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from pixelcheck.analysis.detector.recompression import jpeg, social_copy


def downscale(image: Image.Image, factor: float) -> Image.Image:
    """Shrink by factor (0..1] with a bicubic filter."""
    width, height = image.size
    return image.resize((max(1, round(width * factor)), max(1, round(height * factor))), Image.Resampling.BICUBIC)


def blur(image: Image.Image, sigma: float) -> Image.Image:
    """Gaussian blur with standard deviation sigma in pixels."""
    return image.filter(ImageFilter.GaussianBlur(radius=sigma))


ROBUSTNESS_TRANSFORMS = {
    "jpeg_q70": lambda image: jpeg(image, 70),
    "downscale_half": lambda image: downscale(image, 0.5),
    "blur_sigma1": lambda image: blur(image, 1.0),
    "social_copy": social_copy,
}


def random_social_copy(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A messaging-app copy with a random long side (720–1600 px) and quality (65–90), maybe flipped."""
    image = social_copy(image, int(rng.integers(720, 1601)), int(rng.integers(65, 91)))
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else image


def random_processing(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """One random chain of resize, blur and re-encoding; sometimes nothing at all."""
    if rng.random() < 0.35:
        image = downscale(image, float(rng.uniform(0.45, 0.95)))
    if rng.random() < 0.3:
        image = blur(image, float(rng.uniform(0.3, 1.3)))
    if rng.random() < 0.6:
        image = jpeg(image, int(rng.integers(55, 96)))
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image
