"""Backbone features of every training image, computed once through onnxruntime and cached on disk.

The backbone is frozen, so its features are a pure function of (image, processing, crop); computing them
with the same ONNX graph and crop protocol as the service means that what the head is trained and
calibrated on is exactly what it will see in production. Work is spread over worker processes with one
thread each (faster than one process with two threads on a small CPU).

Every row is the feature vector of ONE crop, kept per crop so that a non-linear head can be trained and
scored exactly as the service scores (mean of the crop logits). A table is a flat matrix per kind plus
the index of the image each row belongs to (`<kind>:image`) and, for regions, the region number:
- `clean`: the crops the service takes of the picture (pixel_model.crop_boxes);
- `augmented`: `AUGMENTED_PER_IMAGE` rows per image — a random processing chain (resize, blur, JPEG,
  flip) with a random 224 px crop, a random messaging-app copy (long side 720–1600, JPEG q65–90) with a
  random 224 px crop, and a random processing chain with a random 128 px crop (the size of a region
  map's regions) — these teach the head to ignore processing history and to read small regions;
- `robust:<transform>` (held-out images): the service crops after each fixed transform of
  augment.ROBUSTNESS_TRANSFORMS (JPEG q70, half size, blur σ1, messaging-app copy) — test images get
  all, validation images the messaging-app copy (it tunes the stability rule);
- `regions` (every image): the crop the service reads of each region of the picture's region map
  (regions.region_grid, pixel_model.region_crop), with `regions:region` numbering the region inside its
  image — the region head is trained, calibrated and measured on these.
Features are stored as float16 (the head standardises them; three significant digits are plenty).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pixelcheck.analysis.detector.pixel_model import crop_boxes, region_crop
from pixelcheck.analysis.detector.regions import region_crop_size, region_grid
from pixelcheck.analysis.detector.training.augment import (
    ROBUSTNESS_TRANSFORMS,
    random_processing,
    random_social_copy,
)

SERVICE_CROPS = 4  # the crops PixelModel reads of a picture (metadata input.crops)
AUGMENTED_PER_IMAGE = 3
# Bump when a row's meaning changes.
PROTOCOL = "per-crop:clean+3aug(proc224,social224,proc128)+robust4+regions(all,one-centred)/v3"
# What each held-out image gets beyond clean and augmented rows: 2 = test, 1 = validation.
HELD_OUT_TRANSFORMS = {2: tuple(ROBUSTNESS_TRANSFORMS), 1: ("social_copy",)}

_session: Any = None


def export_features_onnx() -> bytes:
    """The frozen backbone and the residual statistics (output `features`, backbone columns first) as ONNX
    bytes, dynamic batch and crop size."""
    from pixelcheck.analysis.detector.training.backbone import onnx_bytes
    from pixelcheck.analysis.detector.training.residuals import PixelFeatures

    return onnx_bytes(PixelFeatures("backbone+residuals").eval(), "features")


def _init_worker(model: bytes) -> None:
    import onnxruntime

    global _session
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    _session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _run(crops: Sequence[np.ndarray]) -> np.ndarray:
    batch = np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32)
    return np.asarray(_session.run(None, {"pixels": batch})[0], dtype=np.float32)


def service_crops(image: Image.Image, crops: int) -> list[np.ndarray]:
    """The crops the service takes of this picture, as H×W×3 arrays (none when it is too small)."""
    return [np.asarray(image.crop((x, y, x + s, y + s))) for x, y, s in crop_boxes(image.width, image.height, crops)]


def _random_crop(image: Image.Image, rng: np.random.Generator, size: int) -> np.ndarray:
    size = min(size, image.width, image.height)
    x = int(rng.integers(0, image.width - size + 1))
    y = int(rng.integers(0, image.height - size + 1))
    return np.asarray(image.crop((x, y, x + size, y + size)))


def region_crops(image: Image.Image) -> list[tuple[int, np.ndarray]]:
    """(region number, crop) of each region the service's region map reads of this picture."""
    grid = region_grid(image.width, image.height)
    if grid is None:
        return []
    size = region_crop_size(len(grid.boxes))
    numbered = []
    for number, box in enumerate(grid.boxes):
        read = region_crop(box, size)
        if read is not None:
            x, y, side = read
            numbered.append((number, np.asarray(image.crop((x, y, x + side, y + side)))))
    return numbered


def _one(task: tuple[int, str, int, int, int]) -> tuple[int, dict[str, np.ndarray], np.ndarray]:
    index, path, seed, crops, held_out = task
    image = Image.open(path).convert("RGB")
    rng = np.random.default_rng([seed, index])
    rows = {"clean": _run(service_crops(image, crops))}
    augmented = [
        _random_crop(random_processing(image, rng), rng, 224),
        _random_crop(random_social_copy(image, rng), rng, 224),
        _random_crop(random_processing(image, rng), rng, 128),
    ]
    rows["augmented"] = np.concatenate([_run([crop]) for crop in augmented])
    for name in HELD_OUT_TRANSFORMS.get(held_out, ()):
        rows[f"robust:{name}"] = _run(service_crops(ROBUSTNESS_TRANSFORMS[name](image), crops))
    regions = np.zeros(0, np.int16)
    numbered = region_crops(image)
    if numbered:
        rows["regions"] = np.concatenate([_run([crop]) for _, crop in numbered])
        regions = np.array([number for number, _ in numbered], np.int16)
    return index, rows, regions


def cache_key(data_digest: str, model: bytes, seed: int, crops: int, held_out: Sequence[int]) -> str:
    """Identifies a feature table: the data, the backbone graph, the protocol and which images are held out."""
    digest = hashlib.sha256()
    digest.update(json.dumps([data_digest, PROTOCOL, seed, crops]).encode())
    digest.update(hashlib.sha256(model).digest())
    digest.update(np.asarray(held_out, dtype=np.int8).tobytes())
    return digest.hexdigest()[:24]


class FeatureTable:
    """Per-crop feature rows by kind, with the image (and region) each row belongs to."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def columns(self, chosen: np.ndarray) -> FeatureTable:
        """The same rows with only the chosen feature columns."""
        return FeatureTable(
            {name: array if name.endswith((":image", ":region")) else array[:, chosen]
             for name, array in self.arrays.items()}
        )

    def kinds(self) -> list[str]:
        """The row kinds present ('clean', 'augmented', 'robust:jpeg_q70', 'regions' …)."""
        return sorted(name for name in self.arrays if ":image" not in name and ":region" not in name)

    def rows(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """(features M×F as float32, image index M) of one kind."""
        return self.arrays[kind].astype(np.float32), self.arrays[f"{kind}:image"]


def extract(
    paths: Sequence[Path],
    held_out: Sequence[int],
    *,
    model: bytes,
    seed: int,
    crops: int,
    workers: int,
    cache: Path | None,
    data_digest: str,
    log: Callable[[str], None] = print,
) -> FeatureTable:
    """The feature table of these images; held_out[i] is 2 for test, 1 for validation, 0 for training."""
    key = cache_key(data_digest, model, seed, crops, held_out)
    cached = cache / f"features-{key}.npz" if cache else None
    if cached and cached.is_file():
        log(f"features: cached {cached}")
        with np.load(cached) as table:
            return FeatureTable({name: table[name] for name in table.files})
    tasks = [(i, str(p), seed, crops, int(h)) for i, (p, h) in enumerate(zip(paths, held_out, strict=True))]
    parts: dict[str, list[np.ndarray]] = {}
    owners: dict[str, list[np.ndarray]] = {}
    region_numbers: list[np.ndarray] = []
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_init_worker, initargs=(model,)) as pool:
        for done, (index, rows, regions) in enumerate(pool.imap_unordered(_one, tasks, chunksize=8)):
            for kind, features in rows.items():
                parts.setdefault(kind, []).append(features.astype(np.float16))
                owners.setdefault(kind, []).append(np.full(len(features), index, np.int32))
            if len(regions):
                region_numbers.append(regions)
            if (done + 1) % 500 == 0:
                log(f"features: {done + 1}/{len(tasks)} images")
    arrays: dict[str, np.ndarray] = {}
    for kind in parts:
        order = np.argsort(np.concatenate(owners[kind]), kind="stable")
        arrays[kind] = np.concatenate(parts[kind])[order]
        arrays[f"{kind}:image"] = np.concatenate(owners[kind])[order]
        if kind == "regions":
            arrays["regions:region"] = np.concatenate(region_numbers)[order]
    if cached:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cached, **arrays)
    return FeatureTable(arrays)
