"""Fixtures for the detector tests: the shared fixture folders (skipped cleanly where absent)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


def shared_root() -> Path:
    """PIXELCHECK_SHARED_DIR, else ../shared beside the repository (may be absent)."""
    return Path(os.environ.get("PIXELCHECK_SHARED_DIR") or REPO_ROOT.parent / "shared")


@pytest.fixture
def shared_file() -> Callable[[str], Path]:
    """`shared_file("data/provenance/x.png")`; skips the test cleanly when ../shared is absent."""

    def find(subpath: str) -> Path:
        path = shared_root() / subpath
        if not path.exists():
            pytest.skip(f"../shared/{subpath} not present: set PIXELCHECK_SHARED_DIR to the shared folder")
        return path

    return find
