"""Where the detector shipped with PixelCheck lives (a path only, so reading settings loads no model code)."""

from pathlib import Path

SHIPPED_MODEL_DIR = Path(__file__).resolve().parent / "detector" / "models" / "pixelcheck-residual-1.0.0"
