"""Backbone features of every training image, computed once through onnxruntime and cached on disk.

The backbone is frozen, so its features are a pure function of (image, processing); computing them with
the same ONNX graph and crop protocol as the service means that what the head is trained and calibrated
on is exactly what it will see in production. Work is spread over worker processes with one thread
each (faster than one process with two threads on a small CPU).

Per image three kinds of rows:
- `clean`: the mean feature vector over the crops the service takes (pixel_model.crop_boxes);
  the head is linear, so the head of the mean equals the mean crop logit the service computes;
- `augmented`: `AUGMENTED_PER_IMAGE` random processing chains (resize, blur, JPEG, flip), one random
  crop each — these teach the head to ignore processing history;
- `robustness`: (held-out images only) the fixed JPEG q70 / half size / blur σ1 transforms, service crops.
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

from pixelcheck.analysis.detector.pixel_model import crop_boxes
from pixelcheck.analysis.detector.training.augment import ROBUSTNESS_TRANSFORMS, random_processing

AUGMENTED_PER_IMAGE = 2
PROTOCOL = "clean+2aug+robust/v1"  # bump when what a cached row means changes

_session: Any = None


def export_backbone_onnx() -> bytes:
    """The frozen backbone (output `features`) as ONNX bytes, dynamic batch and crop size."""
    from pixelcheck.analysis.detector.training.backbone import load_backbone, onnx_bytes

    return onnx_bytes(load_backbone(), "features")


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


def service_features(image: Image.Image, crops: int) -> np.ndarray:
    """Mean backbone features over the crops the service takes of this picture (zeros if too small)."""
    boxes = crop_boxes(image.width, image.height, crops)
    return _run([np.asarray(image.crop((x, y, x + s, y + s))) for x, y, s in boxes]).mean(axis=0)


def _random_crop(image: Image.Image, rng: np.random.Generator) -> np.ndarray:
    size = min(224, image.width, image.height)
    x = int(rng.integers(0, image.width - size + 1))
    y = int(rng.integers(0, image.height - size + 1))
    return np.asarray(image.crop((x, y, x + size, y + size)))


def _one(task: tuple[int, str, int, int, bool]) -> tuple[int, np.ndarray, np.ndarray, np.ndarray | None]:
    index, path, seed, crops, robust = task
    image = Image.open(path).convert("RGB")
    rng = np.random.default_rng([seed, index])
    clean = service_features(image, crops)
    augmented = np.stack(
        [_run([_random_crop(random_processing(image, rng), rng)])[0] for _ in range(AUGMENTED_PER_IMAGE)]
    )
    robustness = (
        np.stack([service_features(transform(image), crops) for transform in ROBUSTNESS_TRANSFORMS.values()])
        if robust
        else None
    )
    return index, clean, augmented, robustness


def cache_key(data_digest: str, model: bytes, seed: int, crops: int, robust: Sequence[bool]) -> str:
    """Identifies a feature table: the data, the backbone graph, the protocol and which rows are robust."""
    digest = hashlib.sha256()
    digest.update(json.dumps([data_digest, PROTOCOL, seed, crops]).encode())
    digest.update(hashlib.sha256(model).digest())
    digest.update(np.packbits(np.asarray(robust, dtype=bool)).tobytes())
    return digest.hexdigest()[:24]


def extract(
    paths: Sequence[Path],
    robust: Sequence[bool],
    *,
    model: bytes,
    seed: int,
    crops: int,
    workers: int,
    cache: Path | None,
    data_digest: str,
    log: Callable[[str], None] = print,
) -> dict[str, np.ndarray]:
    """{'clean': N×F, 'augmented': N×A×F, 'robustness': N×3×F (NaN where not robust)} for these images."""
    key = cache_key(data_digest, model, seed, crops, robust)
    cached = cache / f"features-{key}.npz" if cache else None
    if cached and cached.is_file():
        log(f"features: cached {cached}")
        with np.load(cached) as table:
            return {name: table[name] for name in table.files}
    tasks = [(i, str(p), seed, crops, bool(r)) for i, (p, r) in enumerate(zip(paths, robust, strict=True))]
    out: dict[str, np.ndarray] = {}
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_init_worker, initargs=(model,)) as pool:
        for done, (index, clean, augmented, robustness) in enumerate(pool.imap_unordered(_one, tasks, chunksize=8)):
            if not out:
                out = {
                    "clean": np.zeros((len(tasks), clean.size), np.float32),
                    "augmented": np.zeros((len(tasks), AUGMENTED_PER_IMAGE, clean.size), np.float32),
                    "robustness": np.full((len(tasks), len(ROBUSTNESS_TRANSFORMS), clean.size), np.nan, np.float32),
                }
            out["clean"][index], out["augmented"][index] = clean, augmented
            if robustness is not None:
                out["robustness"][index] = robustness
            if (done + 1) % 500 == 0:
                log(f"features: {done + 1}/{len(tasks)} images")
    if cached:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cached, clean=out["clean"], augmented=out["augmented"], robustness=out["robustness"])
    return out
