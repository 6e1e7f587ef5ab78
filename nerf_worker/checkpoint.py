"""``tensorf.pt``: the model's ``state_dict`` plus JSON metadata, loadable with ``weights_only=True``.

The file is ``{"state_dict": {...tensors...}, "metadata": "<json>"}``. The metadata holds the
model's shape (:meth:`TensorVM.metadata`) under ``"model"`` and whatever the caller adds (the scene
camera, the options, the metrics), so :func:`load_tensorf` rebuilds the model from the file alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from nerf_worker.model import TensorVM

FORMAT = "vid2scene-tensorf"
FORMAT_VERSION = 1


def save_tensorf(path: Path, model: TensorVM, extra: dict[str, Any] | None = None) -> None:
    """Write ``model`` and JSON-serialisable ``extra`` metadata to ``path``."""
    metadata = {"format": FORMAT, "version": FORMAT_VERSION, "model": model.metadata(), **(extra or {})}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "metadata": json.dumps(metadata)}, path)


def load_tensorf(path: Path, device: str | torch.device = "cpu") -> tuple[TensorVM, dict[str, Any]]:
    """Read a file written by :func:`save_tensorf` (with ``weights_only=True``).

    Args:
        path: the ``tensorf.pt`` file.
        device: where the rebuilt model lives.

    Returns:
        ``(model in eval mode, metadata)``.

    Raises:
        ValueError: the file is not a vid2scene TensoRF model.
    """
    payload = torch.load(path, map_location="cpu", weights_only=True)
    metadata = json.loads(payload["metadata"]) if isinstance(payload["metadata"], str) else payload["metadata"]
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file")
    model = TensorVM.from_metadata(metadata["model"])
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), metadata
