"""The region head: trained on the crops the region map reads, chosen and calibrated on validation regions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch is a training-only dependency (the `train` extra); the service needs none")
pytest.importorskip("sklearn", reason="scikit-learn is a training-only dependency (the `train` extra)")

from pixelcheck.analysis.detector.training.dataset import Sample  # noqa: E402
from pixelcheck.analysis.detector.training.features import FeatureTable  # noqa: E402
from pixelcheck.analysis.detector.training.pool import Pool  # noqa: E402
from pixelcheck.analysis.detector.training.region_head import fit_region_head, region_agreement  # noqa: E402

IMAGES, FEATURES = 240, 8


def _pool() -> Pool:
    """Images with 4 region rows each. Feature 0 of a region row tells AI from real; the service crops
    (`clean`) carry only noise, so a head that reads regions well must be trained on the region rows."""
    rng = np.random.default_rng(0)
    labels = np.arange(IMAGES) % 2 == 1
    samples = [Sample(Path(f"{i}.png"), bool(labels[i]), f"group{i % 4}", f"source{i}") for i in range(IMAGES)]
    owners = np.repeat(np.arange(IMAGES), 4).astype(np.int32)
    regions = rng.normal(0, 1, (len(owners), FEATURES))
    regions[:, 0] += np.where(labels[owners], 1.5, -1.5)
    arrays = {
        "clean": rng.normal(0, 1, (IMAGES, FEATURES)).astype(np.float16),
        "clean:image": np.arange(IMAGES, dtype=np.int32),
        "augmented": rng.normal(0, 1, (IMAGES, FEATURES)).astype(np.float16),
        "augmented:image": np.arange(IMAGES, dtype=np.int32),
        "regions": regions.astype(np.float16),
        "regions:image": owners,
    }
    split = np.array([0, 0, 0, 1, 2] * (IMAGES // 5))
    return Pool(samples, FeatureTable(arrays), split, seed=7)


def test_the_region_head_learns_from_region_rows_and_is_calibrated_on_validation_regions() -> None:
    pool = _pool()
    spec, head, slope, intercept, search = fit_region_head(pool, log=lambda _: None)
    assert [r["kind"] for r in search] == ["linear", "mlp", "mlp"] and spec in [
        {k: v for k, v in r.items() if k not in ("balanced_log_loss", "accuracy")} for r in search]
    assert slope > 0
    test = np.where(pool.split == 2)[0]
    verdict_ai = pool.labels[test]  # verdicts that are all right: agreement with them equals agreement with truth
    agreement = region_agreement(pool, head, lambda x: 1 / (1 + np.exp(-(slope * x + intercept))), test, verdict_ai)
    assert agreement["images"] == len(test)
    assert agreement["ai_regions_on_ai_side"] >= 0.85 and agreement["real_regions_on_real_side"] >= 0.85
    both = (agreement["ai_regions_on_ai_side"] + agreement["real_regions_on_real_side"]) / 2
    assert agreement["regions_on_the_verdicts_side"] == pytest.approx(both, abs=1e-3)


def test_region_agreement_counts_each_images_regions_against_its_label_and_its_verdict() -> None:
    pool = _pool()

    class Sign:  # a head that reads feature 0's sign: right on most regions
        def logits(self, features: np.ndarray) -> np.ndarray:
            return features[:, 0]

    test = np.where(pool.split == 2)[0]
    wrong_verdicts = ~pool.labels[test]
    agreement = region_agreement(pool, Sign(), lambda x: 1 / (1 + np.exp(-x)), test, wrong_verdicts)
    truth = (agreement["ai_regions_on_ai_side"] + agreement["real_regions_on_real_side"]) / 2
    assert agreement["regions_on_the_verdicts_side"] == pytest.approx(1 - truth, abs=1e-3)
