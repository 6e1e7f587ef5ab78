"""Write trained splats as ``scene.ply`` (INRIA 3DGS layout) and ``scene.splat`` (antimatter15 layout), and read them.

Both files list the splats most important first — by ``exp(Σ log scale) · sigmoid(opacity)``, the order of
antimatter15's converter — so a viewer that streams the file shows the large, opaque splats before the rest. Splats
with a non-finite parameter are left out (as ``gsplat.export_splats`` does). Everything is numpy-vectorised.

The ``splats`` mapping uses gsplat's trainer layout (numpy arrays or torch tensors):
``means`` [N, 3], ``quats`` [N, 4] (w, x, y, z, any norm), ``scales`` [N, 3] (log), ``opacities`` [N] (logit),
``sh0`` [N, 1, 3] (DC SH coefficient), ``shN`` [N, K − 1, 3] (higher-order coefficients; may be absent for degree 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SH_C0 = 0.28209479177387814
SPLAT_RECORD = np.dtype([("position", "<f4", (3,)), ("scale", "<f4", (3,)), ("rgba", "u1", (4,)), ("rot", "u1", (4,))])
assert SPLAT_RECORD.itemsize == 32


def _numpy(value: Any) -> np.ndarray:
    """A float64 numpy copy of an array or a (possibly grad-tracking, possibly CUDA) tensor."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def prepare_splats(splats: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Validate shapes, drop non-finite splats and sort the rest most important first.

    Args:
        splats: the trainer's parameters (see the module docstring).

    Returns:
        ``means`` [M, 3], ``quats`` [M, 4], ``scales`` [M, 3], ``opacities`` [M], ``sh0`` [M, 3], ``shN`` [M, K-1, 3]
        as float64 arrays, M ≤ N, in file order.
    """
    means = _numpy(splats["means"])
    n = means.shape[0]
    arrays = {
        "means": means.reshape(n, 3),
        "quats": _numpy(splats["quats"]).reshape(n, 4),
        "scales": _numpy(splats["scales"]).reshape(n, 3),
        "opacities": _numpy(splats["opacities"]).reshape(n),
        "sh0": _numpy(splats["sh0"]).reshape(n, 3),
    }
    sh_rest = splats.get("shN")
    arrays["shN"] = np.zeros((n, 0, 3)) if sh_rest is None else _numpy(sh_rest).reshape(n, -1, 3)
    degree = math.isqrt(arrays["shN"].shape[1] + 1) - 1
    if (degree + 1) ** 2 != arrays["shN"].shape[1] + 1:
        raise ValueError(f"shN has {arrays['shN'].shape[1]} coefficients per channel; expected (d+1)²-1")
    finite = np.ones(n, dtype=bool)
    for value in arrays.values():
        finite &= np.isfinite(value.reshape(n, -1)).all(axis=1)
    # log of exp(Σ log scale)·sigmoid(opacity), which sorts the same without overflowing
    importance = arrays["scales"].sum(axis=1) - np.logaddexp(0.0, -arrays["opacities"])
    order = np.flatnonzero(finite)
    order = order[np.argsort(-importance[order], kind="stable")]
    return {key: value[order] for key, value in arrays.items()}


def ply_property_names(sh_degree: int) -> list[str]:
    """The vertex properties of ``scene.ply`` in file order.

    Args:
        sh_degree: SH degree of the splats (0..3).

    Returns:
        ``x y z nx ny nz f_dc_0..2 f_rest_0..(3·((d+1)²−1)−1) opacity scale_0..2 rot_0..3``.
    """
    n_rest = 3 * ((sh_degree + 1) ** 2 - 1)
    return [
        *("x", "y", "z", "nx", "ny", "nz"),
        *(f"f_dc_{i}" for i in range(3)),
        *(f"f_rest_{i}" for i in range(n_rest)),
        "opacity",
        *(f"scale_{i}" for i in range(3)),
        *(f"rot_{i}" for i in range(4)),
    ]


def write_ply(path: str | Path, splats: Mapping[str, Any], comments: Sequence[str] = ()) -> int:
    """Write ``scene.ply``: INRIA 3DGS layout, binary little-endian float32, most important splats first.

    Normals are zero; ``f_rest`` is channel-major (all red coefficients, then green, then blue); opacity stays a
    logit, scale stays a log, the quaternion is written w, x, y, z as given (not normalised).

    Args:
        path: file to write.
        splats: the trainer's parameters (see the module docstring).
        comments: one-line texts written as ``comment`` lines of the header (e.g. the exported frame).

    Returns:
        The number of splats written.
    """
    arrays = prepare_splats(splats)
    n, n_coeffs = arrays["means"].shape[0], arrays["shN"].shape[1]
    degree = math.isqrt(n_coeffs + 1) - 1
    names = ply_property_names(degree)
    columns = [
        arrays["means"],
        np.zeros((n, 3)),
        arrays["sh0"],
        arrays["shN"].transpose(0, 2, 1).reshape(n, 3 * n_coeffs),  # channel-major
        arrays["opacities"][:, None],
        arrays["scales"],
        arrays["quats"],
    ]
    table = np.ascontiguousarray(np.concatenate(columns, axis=1), dtype="<f4")  # [N, properties]
    assert table.shape[1] == len(names)
    if any("\n" in c or "\r" in c for c in comments):
        raise ValueError("a PLY comment must be one line")
    header = ["ply", "format binary_little_endian 1.0", *(f"comment {c}" for c in comments), f"element vertex {n}"]
    header += [f"property float {name}" for name in names]
    header.append("end_header")
    with open(path, "wb") as out:
        out.write(("\n".join(header) + "\n").encode("ascii"))
        out.write(table.tobytes())
    return n


def read_ply(path: str | Path) -> dict[str, np.ndarray]:
    """Read a ``scene.ply`` written by :func:`write_ply` (or any INRIA-layout float32 little-endian file).

    Args:
        path: the file.

    Returns:
        ``means`` [N, 3], ``quats`` [N, 4], ``scales`` [N, 3] (log), ``opacities`` [N] (logit), ``sh0`` [N, 1, 3],
        ``shN`` [N, K-1, 3] as float32 arrays, in file order.

    Raises:
        ValueError: when the file is not a binary little-endian PLY with float vertex properties.
    """
    data = Path(path).read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise ValueError(f"{path}: not a PLY file")
    lines = data[:end].decode("ascii").splitlines()
    if "format binary_little_endian 1.0" not in lines:
        raise ValueError(f"{path}: only binary_little_endian PLY is supported")
    count, names = 0, []
    for line in lines:
        words = line.split()
        if words[:2] == ["element", "vertex"]:
            count = int(words[2])
        elif words and words[0] == "property":
            if words[1] != "float":
                raise ValueError(f"{path}: property {words[-1]} is {words[1]}, expected float")
            names.append(words[2])
    table = np.frombuffer(data, dtype="<f4", count=count * len(names), offset=end + len("end_header\n"))
    table = table.reshape(count, len(names))
    column = {name: i for i, name in enumerate(names)}

    def take(prefix: str, size: int) -> np.ndarray:
        return table[:, [column[f"{prefix}{i}"] for i in range(size)]]

    n_rest = sum(name.startswith("f_rest_") for name in names)
    return {
        "means": table[:, [column["x"], column["y"], column["z"]]].copy(),
        "quats": take("rot_", 4).copy(),
        "scales": take("scale_", 3).copy(),
        "opacities": table[:, column["opacity"]].copy(),
        "sh0": take("f_dc_", 3).reshape(count, 1, 3).copy(),
        "shN": take("f_rest_", n_rest).reshape(count, 3, n_rest // 3).transpose(0, 2, 1).copy(),
    }


def write_splat(path: str | Path, splats: Mapping[str, Any]) -> int:
    """Write ``scene.splat``: antimatter15 layout, 32 bytes a splat, most important first.

    Each record: position 3×f32, linear scale ``exp(log scale)`` 3×f32, RGBA u8 with
    ``RGB = clip(0.5 + 0.28209479·f_dc, 0, 1)·255`` and ``A = sigmoid(opacity)·255``, and the quaternion
    ``q/‖q‖·128 + 128`` as u8 (w, x, y, z). Bytes are truncated towards zero, as antimatter15's converter does.

    Args:
        path: file to write.
        splats: the trainer's parameters (see the module docstring).

    Returns:
        The number of splats written.
    """
    arrays = prepare_splats(splats)
    records = np.zeros(arrays["means"].shape[0], dtype=SPLAT_RECORD)
    records["position"] = arrays["means"]
    records["scale"] = np.exp(arrays["scales"])
    rgb = np.clip(0.5 + SH_C0 * arrays["sh0"], 0.0, 1.0) * 255.0
    alpha = 255.0 * np.exp(-np.logaddexp(0.0, -arrays["opacities"]))  # sigmoid without overflow
    records["rgba"] = np.concatenate([rgb, alpha[:, None]], axis=1).astype(np.uint8)
    quats = arrays["quats"] / np.maximum(np.linalg.norm(arrays["quats"], axis=1, keepdims=True), 1e-12)
    records["rot"] = np.clip(quats * 128.0 + 128.0, 0.0, 255.0).astype(np.uint8)
    Path(path).write_bytes(records.tobytes())
    return len(records)


def read_splat(path: str | Path) -> dict[str, np.ndarray]:
    """Decode a ``scene.splat``.

    Args:
        path: the file.

    Returns:
        ``means`` [N, 3], ``scales`` [N, 3] (linear), ``rgba`` [N, 4] (u8), ``quats`` [N, 4] (w, x, y, z, decoded
        as ``(byte − 128) / 128``).
    """
    data = Path(path).read_bytes()
    if len(data) % SPLAT_RECORD.itemsize:
        raise ValueError(f"{path}: {len(data)} bytes is not a whole number of 32-byte splats")
    records = np.frombuffer(data, dtype=SPLAT_RECORD)
    return {
        "means": records["position"].copy(),
        "scales": records["scale"].copy(),
        "rgba": records["rgba"].copy(),
        "quats": (records["rot"].astype(np.float32) - 128.0) / 128.0,
    }
