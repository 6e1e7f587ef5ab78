"""Small videos made on the fly for the SfM tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.video import encode_h264


def textured_frames(n_frames: int, width: int, height: int, *, shift_px: float, seed: int = 0) -> list[np.ndarray]:
    """Frames ``[H, W, 3]`` uint8 of a random texture panned by ``shift_px`` pixels per frame."""
    rng = np.random.default_rng(seed)
    canvas = rng.integers(0, 256, size=(height // 4 + 1, (width + int(abs(shift_px) * n_frames)) // 4 + 2, 3))
    canvas = np.repeat(np.repeat(canvas, 4, axis=0), 4, axis=1).astype(np.uint8)
    return [
        np.ascontiguousarray(canvas[:height, int(i * shift_px) : int(i * shift_px) + width]) for i in range(n_frames)
    ]


@pytest.fixture(scope="session")
def static_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-second 30 fps H.264 video of a textured scene filmed by a camera that never moves."""
    path = tmp_path_factory.mktemp("videos") / "static.mp4"
    frame = textured_frames(1, 160, 96, shift_px=0)[0]
    encode_h264(path, [frame] * 60, 30.0)
    return path


@pytest.fixture(scope="session")
def panning_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-second 30 fps H.264 video panning over a random texture (frames all differ)."""
    path = tmp_path_factory.mktemp("videos") / "panning.mp4"
    encode_h264(path, textured_frames(30, 160, 96, shift_px=3), 30.0)
    return path
