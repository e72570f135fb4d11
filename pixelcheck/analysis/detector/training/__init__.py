"""Training of the pixel model (needs the dev extra: torch, onnx, scikit-learn); never imported at inference."""
