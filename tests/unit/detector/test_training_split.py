"""The evaluation split and band rule: units kept whole, gallery prompts on one side, bands that hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pixelcheck.analysis.detector.training.dataset import Sample, shared_prompt, split_by_source
from pixelcheck.analysis.detector.training.measures import choose_bands, wilson_lower


def _sample(group: str, source: str, crop: int, is_ai: bool = True) -> Sample:
    return Sample(Path(f"{group}__{source}__c{crop}.jpg"), is_ai, group, f"{group}/{source}.jpg")


def _pool() -> list[Sample]:
    samples = []
    prompts = [f"Prompt-{n}" for n in range(12)]
    for generator in ("wan-2.1", "sana-1.5", "bria-3.2"):
        samples += [_sample(generator, f"vladmandic__sd-samples__{generator}_{p}", c) for p in prompts for c in (0, 1)]
    for view in range(30):
        samples += [_sample("strecha-mvs", f"view{view}", c, False) for c in (0, 1)]
    for group in ("sceaux-castle", "opensfm-lund", "alicevision-buddha", "drone-brighton-beach"):
        samples += [_sample(group, f"shot{n}", 0, False) for n in range(5)]
    samples += [_sample("imagenet-samples", f"photo{n}", c, False) for n in range(60) for c in (0, 1)]
    return samples


def test_units_never_span_two_splits() -> None:
    samples = _pool()
    split = split_by_source(samples, seed=7)
    by_source: dict[str, set[int]] = {}
    by_group: dict[str, set[int]] = {}
    by_prompt: dict[str, set[int]] = {}
    for sample, part in zip(samples, split, strict=True):
        by_source.setdefault(sample.source, set()).add(int(part))
        by_group.setdefault(sample.group, set()).add(int(part))
        if (prompt := shared_prompt(sample)) is not None:
            by_prompt.setdefault(prompt, set()).add(int(part))
    assert all(len(parts) == 1 for parts in by_source.values())
    assert all(len(by_group[g]) == 1 for g in ("strecha-mvs", "sceaux-castle", "opensfm-lund"))
    assert len(by_prompt) == 12 and all(len(parts) == 1 for parts in by_prompt.values())
    assert {part for parts in by_prompt.values() for part in parts} == {0, 1, 2}
    assert set(np.unique(split[[s.group == "imagenet-samples" for s in samples]])) == {0, 1, 2}
    assert np.array_equal(split, split_by_source(samples, seed=7))


def test_shared_prompt_is_the_last_part_of_the_stem() -> None:
    sample = _sample("wan-2.1", "vladmandic__sd-samples__Wan-AI_Wan2.1_Astronaut-in-diner", 0)
    assert shared_prompt(sample) == "astronaut-in-diner"
    assert shared_prompt(_sample("sdxl", "comfy_example", 0)) is None


def test_bands_need_enough_evidence_not_a_lucky_handful() -> None:
    assert wilson_lower(20, 20) < 0.9 and wilson_lower(300, 303) > 0.97
    rng = np.random.default_rng(1)
    # 600 confident predictions (3 wrong) and 400 hesitant ones right 70% of the time.
    confidence = np.concatenate([np.full(600, 0.99), np.full(400, 0.7)])
    right = np.concatenate([np.arange(600) >= 3, rng.random(400) < 0.7])
    labels = rng.random(1000) < 0.5
    probabilities = np.where(labels == right, confidence, 1 - confidence)
    bands = choose_bands(probabilities, labels)
    assert 0.7 < bands["high"] <= 0.99 and bands["medium"] <= bands["high"]
    chosen = np.maximum(probabilities, 1 - probabilities) >= bands["high"]
    assert chosen.sum() == 600
    assert choose_bands(np.array([0.99] * 20), np.ones(20, bool))["high"] == 0.995  # 20 of 20: not enough


def test_previous_split_files_keep_their_side_and_new_sources_are_split_by_the_rule() -> None:
    old = _pool()
    old_split = split_by_source(old, seed=7)
    pinned = {s.path.name: int(part) for s, part in zip(old, old_split, strict=True)}
    new = [_sample("flux-1", f"render{n}", c) for n in range(40) for c in (0, 1)]
    new += [_sample("imagenet-samples", f"later{n}", 0, False) for n in range(20)]

    split = split_by_source(old + new, seed=3, pinned=pinned)

    assert [int(p) for p in split[: len(old)]] == [int(p) for p in old_split]
    added = split[len(old) :]
    flux = added[:80]
    assert all(np.bincount(flux, minlength=3) > 0)
    assert abs(int((flux == 2).sum()) - 12) <= 2  # 15% of 40 sources, two crops each
    for sample, part in zip(new, added, strict=True):
        twin = [p for s, p in zip(new, added, strict=True) if s.source == sample.source]
        assert set(twin) == {part}


def test_a_unit_holding_a_pinned_test_file_goes_to_test_whole() -> None:
    samples = [_sample("sdxl", "render", 0), _sample("sdxl", "render", 1)]
    split = split_by_source(samples, seed=7, pinned={samples[0].path.name: 2})
    assert split.tolist() == [2, 2]
