"""``scene.compressed.ply``: PlayCanvas/SuperSplat's compressed PLY layout — written and read with numpy.

A binary little-endian PLY with three elements, as PlayCanvas's ``splat-transform`` writes it:

- ``chunk`` (one per 256 splats, float32): ``min_x min_y min_z max_x max_y max_z``, ``min_scale_x..z
  max_scale_x..z`` (log scales, clamped to ±20), ``min_r min_g min_b max_r max_g max_b`` (colours
  ``0.5 + 0.28209479 · f_dc``).
- ``vertex`` (one per splat, uint32): ``packed_position`` and ``packed_scale`` (11-10-11 bits: x in the top
  11, y in the middle 10, z in the low 11, each ``round((v − min) / (max − min) · (2^b − 1))`` within its
  chunk; 0 when ``max − min < 1e-5``), ``packed_rotation`` (2-10-10-10: the index of the largest-magnitude
  component of the unit quaternion (rot_0..3 = w, x, y, z), made positive, in the top 2 bits, then the
  other three in order, each ``round((q · √½ + 0.5) · 1023)``), ``packed_color`` (8-8-8-8: r, g, b
  normalised within the chunk, then ``sigmoid(opacity)``).
- ``sh`` (one per splat, uchar, degree ≥ 1 only): ``f_rest_0..`` in the INRIA channel-major order, each
  ``trunc((c / 8 + 0.5) · 256)`` clamped to 0…255 (decoded as ``((b + 0.5) / 256 − 0.5) · 8``).

Splats are sorted along a Morton (Z-order) curve of their positions first, as the reference writer does,
so that each chunk's bounds are tight. The axes are the INRIA PLY's (our RDF frame, −y up), like
``scene.ply``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gs_worker.export import SH_C0, prepare_splats

CHUNK = 256
CHUNK_PROPERTIES: tuple[str, ...] = (
    *("min_x", "min_y", "min_z", "max_x", "max_y", "max_z"),
    *("min_scale_x", "min_scale_y", "min_scale_z", "max_scale_x", "max_scale_y", "max_scale_z"),
    *("min_r", "min_g", "min_b", "max_r", "max_g", "max_b"),
)
VERTEX_PROPERTIES: tuple[str, ...] = ("packed_position", "packed_rotation", "packed_scale", "packed_color")
SQRT_HALF = math.sqrt(0.5)


def morton_order(means: np.ndarray) -> np.ndarray:
    """Indices sorting ``[N, 3]`` points along a 30-bit Morton curve over their bounding box."""
    if len(means) == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = means.min(axis=0), means.max(axis=0)
    cells = ((means - lo) / np.maximum(hi - lo, 1e-12) * 1023.0).astype(np.uint64)
    code = np.zeros(len(means), dtype=np.uint64)
    for bit in range(10):
        for axis in range(3):
            code |= ((cells[:, axis] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(3 * bit + (2 - axis))
    return np.argsort(code, kind="stable")


def _unorm(value: np.ndarray, bits: int) -> np.ndarray:
    top = (1 << bits) - 1
    return np.clip(np.floor(value * top + 0.5), 0, top).astype(np.uint32)


def _chunk_bounds(values: np.ndarray, n_chunks: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-chunk min and max ``[C, D]`` of ``[N, D]`` values (the last chunk padded with its last row)."""
    n = len(values)
    padded = np.concatenate([values, np.repeat(values[-1:], n_chunks * CHUNK - n, axis=0)])
    blocks = padded.reshape(n_chunks, CHUNK, -1)
    return blocks.min(axis=1), blocks.max(axis=1)


def _normalise(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``(v − lo) / (hi − lo)`` clipped to [0, 1] per chunk; 0 where the range is below 1e-5."""
    chunk = np.arange(len(values)) // CHUNK
    lo_s, hi_s = lo[chunk], hi[chunk]
    span = hi_s - lo_s
    out = np.where(span < 1e-5, 0.0, (values - lo_s) / np.where(span < 1e-5, 1.0, span))
    return np.clip(out, 0.0, 1.0)


def _pack_111011(unit: np.ndarray) -> np.ndarray:
    return (
        (_unorm(unit[:, 0], 11) << np.uint32(21)) | (_unorm(unit[:, 1], 10) << np.uint32(11)) | _unorm(unit[:, 2], 11)
    )


def _pack_rotation(quats: np.ndarray) -> np.ndarray:
    q = quats / np.maximum(np.linalg.norm(quats, axis=1, keepdims=True), 1e-12)
    n = len(q)
    largest = np.argmax(np.abs(q), axis=1)
    q = q * np.where(q[np.arange(n), largest] < 0, -1.0, 1.0)[:, None]
    out = largest.astype(np.uint32)
    for i in range(4):
        packed = _unorm(q[:, i] * SQRT_HALF + 0.5, 10)
        out = np.where(largest != i, (out << np.uint32(10)) | packed, out)
    return out


def write_compressed_ply(path: str | Path, splats: Mapping[str, Any], comments: Sequence[str] = ()) -> int:
    """Write ``scene.compressed.ply`` (see the module docstring).

    Args:
        path: file to write.
        splats: the trainer's parameters (see :mod:`gs_worker.export`).
        comments: one-line texts written as ``comment`` lines of the header.

    Returns:
        The number of splats written.
    """
    arrays = prepare_splats(splats)
    order = morton_order(arrays["means"])
    arrays = {key: value[order] for key, value in arrays.items()}
    n, n_coeffs = len(arrays["means"]), arrays["shN"].shape[1]
    n_chunks = math.ceil(n / CHUNK)
    header = ["ply", "format binary_little_endian 1.0", *(f"comment {c}" for c in comments)]
    header += [f"element chunk {n_chunks}", *(f"property float {p}" for p in CHUNK_PROPERTIES)]
    header += [f"element vertex {n}", *(f"property uint {p}" for p in VERTEX_PROPERTIES)]
    if n_coeffs:
        header += [f"element sh {n}", *(f"property uchar f_rest_{i}" for i in range(3 * n_coeffs))]
    header.append("end_header")
    if any("\n" in c or "\r" in c for c in comments):
        raise ValueError("a PLY comment must be one line")
    body = b""
    if n:
        scales = np.clip(arrays["scales"], -20.0, 20.0)
        colors = arrays["sh0"] * SH_C0 + 0.5
        p_lo, p_hi = _chunk_bounds(arrays["means"], n_chunks)
        s_lo, s_hi = _chunk_bounds(scales, n_chunks)
        c_lo, c_hi = _chunk_bounds(colors, n_chunks)
        chunks = np.concatenate([p_lo, p_hi, s_lo, s_hi, c_lo, c_hi], axis=1).astype("<f4")
        c_unit = _normalise(colors, c_lo, c_hi)
        alpha = np.exp(-np.logaddexp(0.0, -arrays["opacities"]))
        color = (
            (_unorm(c_unit[:, 0], 8) << np.uint32(24))
            | (_unorm(c_unit[:, 1], 8) << np.uint32(16))
            | (_unorm(c_unit[:, 2], 8) << np.uint32(8))
            | _unorm(alpha, 8)
        )
        vertex = np.stack(
            [
                _pack_111011(_normalise(arrays["means"], p_lo, p_hi)),
                _pack_rotation(arrays["quats"]),
                _pack_111011(_normalise(scales, s_lo, s_hi)),
                color,
            ],
            axis=1,
        ).astype("<u4")
        sh = arrays["shN"].transpose(0, 2, 1).reshape(n, 3 * n_coeffs)  # channel-major, as f_rest_*
        sh_bytes = np.clip(np.trunc((sh / 8.0 + 0.5) * 256.0), 0, 255).astype(np.uint8)
        body = chunks.tobytes() + vertex.tobytes() + sh_bytes.tobytes()
    Path(path).write_bytes(("\n".join(header) + "\n").encode("ascii") + body)
    return n


def read_compressed_ply(path: str | Path) -> dict[str, np.ndarray]:
    """Decode a ``scene.compressed.ply`` written by :func:`write_compressed_ply`.

    Returns:
        ``means`` [N, 3], ``quats`` [N, 4] (w, x, y, z), ``scales`` [N, 3] (log), ``opacities`` [N] (logit),
        ``sh0`` [N, 1, 3], ``shN`` [N, K-1, 3] as float64, in file order.

    Raises:
        ValueError: not a compressed PLY with the expected elements.
    """
    data = Path(path).read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise ValueError(f"{path}: not a PLY file")
    counts: dict[str, int] = {}
    props: dict[str, list[str]] = {}
    current = ""
    for line in data[:end].decode("ascii").splitlines():
        words = line.split()
        if words[:1] == ["element"]:
            current = words[1]
            counts[current], props[current] = int(words[2]), []
        elif words[:1] == ["property"]:
            props[current].append(words[2])
    if list(props.get("chunk", [])) != list(CHUNK_PROPERTIES) or props.get("vertex") != list(VERTEX_PROPERTIES):
        raise ValueError(f"{path}: not a compressed PLY (chunk and packed vertex elements)")
    offset = end + len(b"end_header\n")
    n_chunks, n = counts["chunk"], counts["vertex"]
    chunks = np.frombuffer(data, "<f4", n_chunks * 18, offset).reshape(n_chunks, 18).astype(np.float64)
    offset += n_chunks * 18 * 4
    vertex = np.frombuffer(data, "<u4", n * 4, offset).reshape(n, 4)
    offset += n * 16
    n_sh = len(props.get("sh", []))
    sh = np.frombuffer(data, np.uint8, n * n_sh, offset).reshape(n, n_sh).astype(np.float64)
    chunk = np.arange(n) // CHUNK

    def unorm(value: np.ndarray, shift: int, bits: int) -> np.ndarray:
        return ((value >> np.uint32(shift)) & np.uint32((1 << bits) - 1)).astype(np.float64) / ((1 << bits) - 1)

    def unpack_111011(value: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        unit = np.stack([unorm(value, 21, 11), unorm(value, 11, 10), unorm(value, 0, 11)], axis=1)
        return lo[chunk] + unit * (hi[chunk] - lo[chunk])

    means = unpack_111011(vertex[:, 0], chunks[:, 0:3], chunks[:, 3:6])
    scales = unpack_111011(vertex[:, 2], chunks[:, 6:9], chunks[:, 9:12])
    packed = vertex[:, 1]
    abc = [(unorm(packed, shift, 10) - 0.5) / SQRT_HALF for shift in (20, 10, 0)]
    m = np.sqrt(np.maximum(0.0, 1.0 - sum(v**2 for v in abc)))
    largest = (packed >> np.uint32(30)).astype(np.int64)
    quats = np.zeros((n, 4))
    for which in range(4):
        rows = largest == which
        others = [i for i in range(4) if i != which]
        quats[rows, which] = m[rows]
        for slot, i in enumerate(others):
            quats[rows, i] = abc[slot][rows]
    color_unit = np.stack([unorm(vertex[:, 3], s, 8) for s in (24, 16, 8)], axis=1)
    colors = chunks[chunk, 12:15] + color_unit * (chunks[chunk, 15:18] - chunks[chunk, 12:15])
    alpha = unorm(vertex[:, 3], 0, 8)
    with np.errstate(divide="ignore"):
        opacities = np.log(alpha) - np.log1p(-alpha)
    rest = ((sh + 0.5) / 256.0 - 0.5) * 8.0
    return {
        "means": means,
        "quats": quats,
        "scales": scales,
        "opacities": opacities,
        "sh0": ((colors - 0.5) / SH_C0).reshape(n, 1, 3),
        "shN": rest.reshape(n, 3, n_sh // 3).transpose(0, 2, 1),
    }
