"""``scene.spz``: Niantic's SPZ format (MIT), version 3 — written and read with numpy.

The file is one gzip stream of a 16-byte little-endian header and then the attributes column by column
(all splats' positions, then all alphas, colours, scales, rotations, SH), as ``nianticlabs/spz``'s
``serializePackedGaussians`` writes them:

- header: ``magic 0x5053474e ("NGSP"), version 3, numPoints`` (u32 each), ``shDegree, fractionalBits,
  flags, reserved`` (u8 each); ``flags`` bit 0 would mark an antialiased scene (ours are not).
- positions: 3 × 24-bit signed fixed point per splat, ``round(x · 2^fractionalBits)``; we use 12 fractional
  bits (1/4096 of the SfM unit) and fewer only when a coordinate would not fit in 24 bits.
- alphas: ``round(sigmoid(opacity) · 255)``.
- colours: ``round(f_dc · 0.15 · 255 + 127.5)`` per channel (the DC SH coefficient, not RGB).
- scales: ``round((log σ + 10) · 16)`` per axis.
- rotations (version 3): "smallest three": the unit quaternion (x, y, z, w) with its largest-magnitude
  component made positive and dropped; a 32-bit word holds its index (top 2 bits) and, for the other
  three in order, a sign bit and a 9-bit magnitude ``round(|q_i| / √½ · 511)`` (first one highest).
- SH (degree ≥ 1): per splat, per coefficient, R G B as ``round(c · 128) + 128`` snapped to buckets of 8
  (5 bits) for the 3 degree-1 coefficients and of 16 (4 bits) for the rest, clamped to 0…255.

Coordinates: SPZ stores RUB (x right, y up, z back — three.js's). Our world is OpenCV RDF (x right, y down,
z forward, −y up), so y and z flip: positions ``(x, −y, −z)``, quaternion ``(x, −y, −z, w)`` (the same
rotation seen from the flipped frame), and each SH coefficient is multiplied by the sign its basis
function takes under ``(x, y, z) → (x, −y, −z)``. Version 3 (gzip) is written, not the 2026 version 4
(zstd, multi-stream): Spark, SuperSplat and the spz library all read version 3.
"""

from __future__ import annotations

import gzip
import math
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gs_worker.export import prepare_splats

MAGIC = 0x5053474E
VERSION = 3
HEADER = struct.Struct("<IIIBBBB")
FRACTIONAL_BITS = 12
COLOR_SCALE = 0.15
SH1_BUCKET = 1 << (8 - 5)  # 5 bits for degree 1
SH_REST_BUCKET = 1 << (8 - 4)  # 4 bits for degree 2 and 3
SQRT_HALF = math.sqrt(0.5)
#: RDF → RUB: the sign of each axis.
FLIP_POSITION = np.array([1.0, -1.0, -1.0])
#: The sign each SH coefficient (gsplat/INRIA order, degree 1..3) takes when y and z flip.
FLIP_SH = np.array([-1, -1, 1, -1, 1, 1, -1, 1, -1, 1, -1, -1, 1, -1, 1], dtype=np.float64)
#: Most splats the reference loader accepts.
MAX_POINTS = 10_000_000


def _u8(x: np.ndarray) -> np.ndarray:
    """Round half away from zero (as ``std::round``) and clamp to a byte."""
    return np.clip(np.sign(x) * np.floor(np.abs(x) + 0.5), 0, 255).astype(np.uint8)


def _quantize_sh(values: np.ndarray, bucket: int) -> np.ndarray:
    q = (np.sign(values * 128.0) * np.floor(np.abs(values * 128.0) + 0.5) + 128.0).astype(np.int64)
    q = (q + bucket // 2) // bucket * bucket
    return np.clip(q, 0, 255).astype(np.uint8)


def _pack_rotations(quats_wxyz: np.ndarray) -> np.ndarray:
    """Smallest-three packing of ``[N, 4]`` (w, x, y, z) quaternions, already in RUB; returns ``[N, 4]`` u8."""
    q = quats_wxyz[:, [1, 2, 3, 0]]  # x, y, z, w
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    n = len(q)
    largest = np.argmax(np.abs(q), axis=1)
    negate = q[np.arange(n), largest] < 0
    comp = largest.astype(np.uint32)
    for i in range(4):
        other = largest != i
        neg = ((q[:, i] < 0) ^ negate).astype(np.uint32)
        mag = np.clip(np.floor(511.0 * np.abs(q[:, i]) / SQRT_HALF + 0.5), 0, 511).astype(np.uint32)
        comp = np.where(other, (comp << np.uint32(10)) | (neg << np.uint32(9)) | mag, comp)
    return comp.astype("<u4").view(np.uint8).reshape(n, 4)


def _unpack_rotations(packed: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_pack_rotations`: ``[N, 4]`` u8 → ``[N, 4]`` (w, x, y, z) unit quaternions."""
    comp = packed.astype(np.uint8).copy().view("<u4").reshape(-1).astype(np.uint32)
    n = len(comp)
    largest = (comp >> np.uint32(30)).astype(np.int64)
    q = np.zeros((n, 4))
    rest = comp.copy()
    for i in range(3, -1, -1):
        other = largest != i
        mag = (rest & np.uint32(511)).astype(np.float64)
        neg = ((rest >> np.uint32(9)) & np.uint32(1)).astype(bool)
        value = SQRT_HALF * mag / 511.0 * np.where(neg, -1.0, 1.0)
        q[:, i] = np.where(other, value, 0.0)
        rest = np.where(other, rest >> np.uint32(10), rest)
    q[np.arange(n), largest] = np.sqrt(np.maximum(0.0, 1.0 - (q**2).sum(axis=1)))
    return q[:, [3, 0, 1, 2]]


def write_spz(path: str | Path, splats: Mapping[str, Any]) -> int:
    """Write ``scene.spz`` (version 3) from splats in our (RDF) frame, most important first.

    Args:
        path: file to write.
        splats: the trainer's parameters (see :mod:`gs_worker.export`); SH degree 0..3.

    Returns:
        The number of splats written.

    Raises:
        ValueError: more splats than SPZ readers accept (:data:`MAX_POINTS`).
    """
    arrays = prepare_splats(splats)
    n, n_coeffs = len(arrays["means"]), arrays["shN"].shape[1]
    if n > MAX_POINTS:
        raise ValueError(f"{n} splats: SPZ readers accept at most {MAX_POINTS}")
    degree = math.isqrt(n_coeffs + 1) - 1
    means = arrays["means"] * FLIP_POSITION
    largest = float(np.abs(means).max()) if n else 0.0
    bits = FRACTIONAL_BITS
    while bits > 0 and largest * (1 << bits) >= (1 << 23) - 1:
        bits -= 1
    fixed = np.clip(np.floor(np.abs(means) * (1 << bits) + 0.5) * np.sign(means), -(1 << 23), (1 << 23) - 1)
    fixed = fixed.astype(np.int64).reshape(-1) & 0xFFFFFF
    positions = np.stack([fixed & 0xFF, (fixed >> 8) & 0xFF, (fixed >> 16) & 0xFF], axis=1).astype(np.uint8)
    alphas = _u8(255.0 * np.exp(-np.logaddexp(0.0, -arrays["opacities"])))
    colors = _u8(arrays["sh0"] * (COLOR_SCALE * 255.0) + 127.5)
    scales = _u8((arrays["scales"] + 10.0) * 16.0)
    quats = arrays["quats"] * np.array([1.0, *FLIP_POSITION])  # w, x, -y, -z
    rotations = _pack_rotations(quats)
    sh = arrays["shN"] * FLIP_SH[:n_coeffs, None]
    sh_bytes = np.concatenate(
        [_quantize_sh(sh[:, :3], SH1_BUCKET), _quantize_sh(sh[:, 3:], SH_REST_BUCKET)], axis=1
    )  # [N, K-1, 3]: per splat, per coefficient, R G B
    body = b"".join(
        [
            HEADER.pack(MAGIC, VERSION, n, degree, bits, 0, 0),
            positions.tobytes(),
            alphas.tobytes(),
            colors.tobytes(),
            scales.tobytes(),
            rotations.tobytes(),
            sh_bytes.tobytes(),
        ]
    )
    Path(path).write_bytes(gzip.compress(body, compresslevel=9, mtime=0))
    return n


def read_spz(path: str | Path) -> dict[str, np.ndarray]:
    """Decode a version 2 or 3 ``.spz`` into our (RDF) frame and the trainer's layout.

    Args:
        path: the file.

    Returns:
        ``means`` [N, 3], ``quats`` [N, 4] (w, x, y, z, unit), ``scales`` [N, 3] (log), ``opacities`` [N]
        (logit), ``sh0`` [N, 1, 3], ``shN`` [N, K-1, 3] as float64, in file order; and ``fractional_bits``.

    Raises:
        ValueError: not an SPZ file, or a version other than 2 or 3.
    """
    data = gzip.decompress(Path(path).read_bytes())
    magic, version, n, degree, bits, _flags, _ = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise ValueError(f"{path}: not an SPZ file")
    if version not in (2, 3):
        raise ValueError(f"{path}: SPZ version {version} is not supported (2 or 3)")
    n_coeffs = (degree + 1) ** 2 - 1
    rot_bytes = 4 if version == 3 else 3
    offset = HEADER.size

    def take(count: int) -> np.ndarray:
        nonlocal offset
        out = np.frombuffer(data, dtype=np.uint8, count=count, offset=offset)
        offset += count
        return out

    raw = take(9 * n).reshape(n * 3, 3).astype(np.int64)
    fixed = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
    fixed = np.where(fixed & 0x800000, fixed - (1 << 24), fixed)
    means = fixed.reshape(n, 3) / float(1 << bits) * FLIP_POSITION
    alphas = take(n).astype(np.float64) / 255.0
    colors = take(3 * n).reshape(n, 3).astype(np.float64)
    scales = take(3 * n).reshape(n, 3).astype(np.float64) / 16.0 - 10.0
    rot = take(rot_bytes * n).reshape(n, rot_bytes)
    if version == 3:
        quats = _unpack_rotations(rot)
    else:
        xyz = rot.astype(np.float64) / 127.5 - 1.0
        w = np.sqrt(np.maximum(0.0, 1.0 - (xyz**2).sum(axis=1)))
        quats = np.concatenate([w[:, None], xyz], axis=1)
    quats = quats * np.array([1.0, *FLIP_POSITION])
    sh = (take(3 * n_coeffs * n).reshape(n, n_coeffs, 3).astype(np.float64) - 128.0) / 128.0
    with np.errstate(divide="ignore"):
        opacities = np.log(alphas) - np.log1p(-alphas)
    return {
        "means": means,
        "quats": quats,
        "scales": scales,
        "opacities": opacities,
        "sh0": ((colors / 255.0 - 0.5) / COLOR_SCALE).reshape(n, 1, 3),
        "shN": sh * FLIP_SH[:n_coeffs, None],
        "fractional_bits": np.array(bits),
    }
