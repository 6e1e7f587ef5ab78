"""Gaussian-splatting stage: training, rasterizers, exports and flythrough."""
