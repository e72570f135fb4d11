"""The model card: on the held-out test split, how often each kind of real photo is wrongly called AI,
and how much of each generator family is caught — the numbers a user needs to judge a verdict.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pixelcheck.analysis.detector.training.families import family_names, family_of

# kind of real photo → (description, the pool's real groups of that kind; a prefix ends with "*")
REAL_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "camera-originals": (
        "camera and drone originals and exports (personal photo streams, EXIF-bearing camera JPEGs, high-ISO "
        "and low-light shots, multi-view sets)",
        (
            "photostream-*",
            "drewnoakes-mei",
            "polyu-real-noisy",
            "dicm-lowlight",
            "strecha-mvs",
            "sceaux-castle",
            "alicevision-*",
            "opensfm-lund",
            "drone-brighton-beach",
        ),
    ),
    "phone": ("phone snapshots (everyday shots, products in shops)", ("real-phone", "real-product")),
    "professional": (
        "professional and edited work (portraits, weddings, sports, editorial, concerts, products, "
        "photographers' exports)",
        ("pro-*", "alyosha-nyc", "mosiehillis-concerts"),
    ),
    "text": ("text in the picture (labels, signs, documents photographed by hand)", ("real-text",)),
    "events": ("events under stage light, haze and crowds", ("real-events",)),
    "web": ("web photos (ImageNet, scene and segmentation sets)", ("imagenet-samples", "sun-hays80", "bsds500")),
    "film-scans": ("film scans and colour test photos", ("kodak24", "mcmaster")),
}


def real_kind(group: str) -> str:
    """The kind of real photo a real group holds ('other' when no kind names it)."""
    for kind, (_, groups) in REAL_KINDS.items():
        if any(group == g or (g.endswith("*") and group.startswith(g[:-1])) for g in groups):
            return kind
    return "other"


def model_card(groups: np.ndarray, labels: np.ndarray, predicted_ai: np.ndarray) -> dict[str, Any]:
    """{'false_positive_rate_by_real_kind': …, 'catch_rate_by_family': …} on a set of scored images."""
    fpr: dict[str, Any] = {}
    kinds = np.array([real_kind(g) for g in groups])
    for kind, (description, _) in REAL_KINDS.items():
        inside = ~labels & (kinds == kind)
        if inside.any():
            fpr[kind] = {
                "description": description,
                "n": int(inside.sum()),
                "wrongly_called_ai": round(float(predicted_ai[inside].mean()), 4),
            }
    catch: dict[str, Any] = {}
    families = np.array([family_of(g) if ai else "" for g, ai in zip(groups, labels, strict=True)])
    for family, name in family_names().items():
        inside = labels & (families == family)
        if inside.any():
            caught = round(float(predicted_ai[inside].mean()), 4)
            catch[family] = {"name": name, "n": int(inside.sum()), "caught": caught}
    return {"false_positive_rate_by_real_kind": fpr, "catch_rate_by_family": catch}
