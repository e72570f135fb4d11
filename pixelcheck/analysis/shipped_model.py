"""Where the detector shipped with PixelCheck lives (a path only: resolving it loads no model code)."""

from pathlib import Path

SHIPPED_MODEL_DIR = Path(__file__).resolve().parent / "detector" / "models" / "pixelcheck-lite0-3.2.0"
