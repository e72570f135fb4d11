"""What scripts/eval-detector prints: a scoring pass's summary as text, the table of every variant beside the
original, and the groups a variant hurts most; and the model card's video numbers it writes (--card)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pixelcheck.analysis.detector.evaluation_variants import CLIP_DESCRIPTIONS


def group_drops(original: dict[str, Any], variant: dict[str, Any], count: int = 5) -> list[dict[str, Any]]:
    """The `count` groups that lose the most right answers from the original to the variant (only those that lose
    any; a group of two losing one is a smaller drop than a group of twelve losing five)."""
    drops = [
        {"group": group, "n": v["n"], "original": v["accuracy"], "variant": variant["per_group"][group]["accuracy"],
         "images_lost": round(v["n"] * (v["accuracy"] - variant["per_group"][group]["accuracy"]))}
        for group, v in original["per_group"].items()
    ]
    return sorted((d for d in drops if d["images_lost"] > 0), key=lambda d: (-d["images_lost"], d["group"]))[:count]


def comparison(results: dict[str, Any], names: Sequence[str]) -> str:
    """One table of every variant scored: accuracy, ROC AUC, AI recall, real accuracy and the accuracy's change
    from the original."""
    base = results["original"]["accuracy"]
    lines = ["| variant | images | accuracy | ROC AUC | AI recall | real accuracy | accuracy vs original |",
             "|---|---|---|---|---|---|---|"]
    for name in names:
        r = results[name]
        lines.append(f"| {name} | {r['n']} | {r['accuracy']:.3f} | {r['roc_auc']} | {r['ai_recall']} | "
                     f"{r['real_accuracy']} | {r['accuracy'] - base:+.3f} |")
    return "\n".join(lines)


def render(name: str, summary: dict[str, Any]) -> str:
    """A plain-text report of one summary."""
    lines = [
        f"== {name}: {summary['n']} images  accuracy {summary['accuracy']:.4f}  ROC AUC {summary['roc_auc']}  "
        f"ECE {summary['ece']:.4f}  AI recall {summary['ai_recall']}  real accuracy {summary['real_accuracy']}",
        "  per band:  "
        + "  ".join(
            f"{band} {v['share']:.1%} of images, {v['accuracy'] if v['accuracy'] is not None else '-'} right"
            for band, v in summary["per_band"].items()
        ),
        "  per group:",
    ]
    lines += [f"    {group:<34} {v['n']:>5}  {v['accuracy']:.3f}" for group, v in summary["per_group"].items()]
    lines.append("  most confidently wrong:")
    lines += [
        f"    {w['prob_ai']:.3f} {w['band']:<6} {w['group']:<24} {w['file']}" for w in summary["most_confidently_wrong"]
    ]
    return "\n".join(lines)


def video_card(results: dict[str, Any], model_version: str, measured_with: str) -> dict[str, Any]:
    """The model card's video numbers from an evaluation's results: the stills, then each clip encoding scored."""
    variants = {}
    for name in CLIP_DESCRIPTIONS:
        if name not in results:
            continue
        summary = results[name]
        variants[name] = {"description": CLIP_DESCRIPTIONS[name], "n": summary["n"], "n_ai": summary["n_ai"],
                          **{key: summary[key] for key in ("accuracy", "roc_auc", "ai_recall", "real_accuracy")}}
    return {"model": model_version, "measured_with": measured_with, "variants": variants}
