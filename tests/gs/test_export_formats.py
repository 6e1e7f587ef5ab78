"""scene.spz and scene.compressed.ply: round trips through our readers and through decoders written here from
the format descriptions (nianticlabs/spz ``load-spz.cc``; PlayCanvas ``splat-transform``'s compressed PLY)."""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from plyfile import PlyData

from gs_worker.export import prepare_splats
from gs_worker.export_compressed_ply import read_compressed_ply, write_compressed_ply
from gs_worker.export_spz import read_spz, write_spz
from tests.gs.test_export import make_splats

SH_C0 = 0.28209479177387814

#: The real SH basis of degree 1..3 in the INRIA / gsplat order, on a unit direction (x, y, z).
SH_BASIS = (
    lambda x, y, z: -0.4886025119029199 * y,
    lambda x, y, z: 0.4886025119029199 * z,
    lambda x, y, z: -0.4886025119029199 * x,
    lambda x, y, z: 1.0925484305920792 * x * y,
    lambda x, y, z: -1.0925484305920792 * y * z,
    lambda x, y, z: 0.31539156525252005 * (3 * z * z - 1),
    lambda x, y, z: -1.0925484305920792 * x * z,
    lambda x, y, z: 0.5462742152960396 * (x * x - y * y),
    lambda x, y, z: -0.5900435899266435 * y * (3 * x * x - y * y),
    lambda x, y, z: 2.890611442640554 * x * y * z,
    lambda x, y, z: -0.4570457994644658 * y * (5 * z * z - 1),
    lambda x, y, z: 0.3731763325901154 * z * (5 * z * z - 3),
    lambda x, y, z: -0.4570457994644658 * x * (5 * z * z - 1),
    lambda x, y, z: 1.445305721320277 * z * (x * x - y * y),
    lambda x, y, z: -0.5900435899266435 * x * (x * x - 3 * y * y),
)


def bounded_splats(n: int, sh_degree: int, seed: int) -> dict[str, torch.Tensor]:
    """Splats whose values lie inside the formats' ranges (SPZ's SH bytes span ±1, its colours ±3.3)."""
    splats = make_splats(n=n, sh_degree=sh_degree, seed=seed)
    splats["sh0"] = splats["sh0"].clamp(-2.0, 2.0)
    splats["shN"] = splats["shN"].clamp(-0.9, 0.9)
    return splats


def sh_colour(coeffs: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Σ_k c_k Y_k(d) over the degree ≥ 1 coefficients ``[N, K, 3]`` for one unit direction."""
    x, y, z = direction
    basis = np.array([f(x, y, z) for f in SH_BASIS[: coeffs.shape[1]]])
    return np.einsum("k,nkc->nc", basis, coeffs)


# --- SPZ ------------------------------------------------------------------------------------------------


def decode_spz_from_the_format_text(path: Path) -> dict[str, np.ndarray]:
    """Raw SPZ (RUB axes, no flips undone): header fields and attributes decoded as ``load-spz.cc`` does."""
    data = gzip.decompress(path.read_bytes())
    magic, version, n, degree, bits, flags, reserved = struct.unpack_from("<IIIBBBB", data, 0)
    out: dict[str, np.ndarray] = {"header": np.array([magic, version, n, degree, bits, flags, reserved])}
    offset = 16
    positions = []
    for _ in range(3 * n):
        b0, b1, b2 = data[offset : offset + 3]
        value = b0 | b1 << 8 | b2 << 16
        positions.append((value - (1 << 24) if value & 0x800000 else value) / (1 << bits))
        offset += 3
    out["position"] = np.array(positions).reshape(n, 3)
    out["alpha"] = np.frombuffer(data, np.uint8, n, offset) / 255.0
    offset += n
    out["dc"] = (np.frombuffer(data, np.uint8, 3 * n, offset).reshape(n, 3) / 255.0 - 0.5) / 0.15
    offset += 3 * n
    out["log_scale"] = np.frombuffer(data, np.uint8, 3 * n, offset).reshape(n, 3) / 16.0 - 10.0
    offset += 3 * n
    quats = []
    for i in range(n):
        (comp,) = struct.unpack_from("<I", data, offset + 4 * i)
        largest, q = comp >> 30, [0.0] * 4
        for k in (3, 2, 1, 0):
            if k == largest:
                continue
            q[k] = math.sqrt(0.5) * (comp & 511) / 511 * (-1 if comp >> 9 & 1 else 1)
            comp >>= 10
        q[largest] = math.sqrt(max(0.0, 1 - sum(v * v for v in q)))
        quats.append(q)  # x, y, z, w
    out["quat_xyzw"] = np.array(quats)
    offset += 4 * n
    n_coeffs = (degree + 1) ** 2 - 1
    out["sh"] = (np.frombuffer(data, np.uint8, 3 * n_coeffs * n, offset).reshape(n, n_coeffs, 3) - 128.0) / 128.0
    assert offset + 3 * n_coeffs * n == len(data)
    return out


@pytest.mark.parametrize("sh_degree", [0, 1, 3])
def test_spz_is_a_version_3_gzip_that_the_format_text_decodes_to_the_splats_in_rub_axes(
    tmp_path: Path, sh_degree: int
) -> None:
    splats = bounded_splats(200, sh_degree, seed=10 + sh_degree)
    path = tmp_path / "scene.spz"
    assert write_spz(path, splats) == 200
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    raw = decode_spz_from_the_format_text(path)
    magic, version, n, degree, bits, flags, _ = raw["header"]
    assert (magic, version, n, degree, bits, flags) == (0x5053474E, 3, 200, sh_degree, 12, 0)

    source = prepare_splats(splats)  # the file order: most important first
    rub = np.array([1.0, -1.0, -1.0])  # our x right, y down, z forward → SPZ's x right, y up, z back
    np.testing.assert_allclose(raw["position"], source["means"] * rub, atol=0.5 / 4096)
    np.testing.assert_allclose(raw["log_scale"], source["scales"], atol=1 / 32 + 1e-9)
    alpha = 1 / (1 + np.exp(-source["opacities"]))
    np.testing.assert_allclose(raw["alpha"], alpha, atol=0.5 / 255 + 1e-9)
    np.testing.assert_allclose(raw["dc"], source["sh0"], atol=0.5 / (0.15 * 255) + 1e-9)
    # the same rotation seen from the flipped frame: R' = F R F with F = diag(1, -1, -1)
    unit = source["quats"] / np.linalg.norm(source["quats"], axis=1, keepdims=True)
    expected = np.stack([unit[:, 1], -unit[:, 2], -unit[:, 3], unit[:, 0]], axis=1)
    assert np.abs(np.abs((raw["quat_xyzw"] * expected).sum(axis=1)) - 1).max() < 1e-4
    if sh_degree:
        # SH: the colour seen along d in our frame equals the file's colour along the flipped direction
        for direction in np.random.default_rng(0).normal(size=(5, 3)):
            d = direction / np.linalg.norm(direction)
            ours = sh_colour(source["shN"], d)
            theirs = sh_colour(raw["sh"], d * rub)
            step = 16 / 128 if sh_degree > 1 else 8 / 128  # the coarsest bucket of the file's quantisation
            assert np.abs(ours - theirs).max() <= step * sum(abs(f(*d)) for f in SH_BASIS[: raw["sh"].shape[1]])


def test_spz_round_trips_through_our_reader_within_the_quantisation(tmp_path: Path) -> None:
    splats = bounded_splats(300, 3, seed=20)
    write_spz(tmp_path / "scene.spz", splats)
    back = read_spz(tmp_path / "scene.spz")
    source = prepare_splats(splats)
    np.testing.assert_allclose(back["means"], source["means"], atol=0.5 / 4096)
    np.testing.assert_allclose(back["scales"], source["scales"], atol=1 / 32 + 1e-9)
    np.testing.assert_allclose(back["sh0"][:, 0], source["sh0"], atol=0.5 / (0.15 * 255) + 1e-9)
    np.testing.assert_allclose(
        back["shN"][:, :3], source["shN"][:, :3], atol=4.5 / 128 + 1e-9
    )  # 5-bit band: ½ step of 1/128, then ½ bucket
    np.testing.assert_allclose(back["shN"][:, 3:], source["shN"][:, 3:], atol=8.5 / 128 + 1e-9)  # 4-bit bands
    alpha = 1 / (1 + np.exp(-back["opacities"]))
    np.testing.assert_allclose(alpha, 1 / (1 + np.exp(-source["opacities"])), atol=0.5 / 255 + 1e-9)
    unit = source["quats"] / np.linalg.norm(source["quats"], axis=1, keepdims=True)
    assert np.abs(np.abs((back["quats"] * unit).sum(axis=1)) - 1).max() < 1e-4


def test_spz_uses_fewer_fractional_bits_only_when_a_position_would_not_fit_24_bits(tmp_path: Path) -> None:
    splats = bounded_splats(20, 0, seed=21)
    splats["means"][0] = torch.tensor([5000.0, -3000.0, 2.0])
    write_spz(tmp_path / "far.spz", splats)
    back = read_spz(tmp_path / "far.spz")
    assert int(back["fractional_bits"]) == 10  # 5000 · 2^10 < 2^23 ≤ 5000 · 2^11
    np.testing.assert_allclose(back["means"], prepare_splats(splats)["means"], atol=0.5 / 1024)


# --- compressed PLY --------------------------------------------------------------------------------------


def decode_compressed_ply_from_the_layout_text(path: Path) -> tuple[dict[str, np.ndarray], int]:
    """Decode with plyfile and the PlayCanvas layout: returns the splats (w-first quats, logit, log) and chunks."""
    ply = PlyData.read(str(path))
    chunk, vertex = ply["chunk"].data, ply["vertex"].data
    n = len(vertex)

    def unorm(value: np.ndarray, shift: int, bits: int) -> np.ndarray:
        return ((value >> shift) & ((1 << bits) - 1)) / ((1 << bits) - 1)

    c = np.arange(n) // 256

    def lerp(prefix: str, suffix: str, t: np.ndarray) -> np.ndarray:
        lo, hi = chunk[f"min_{prefix}{suffix}"][c], chunk[f"max_{prefix}{suffix}"][c]
        return lo + t * (hi - lo)

    pos, scale = vertex["packed_position"].astype(np.int64), vertex["packed_scale"].astype(np.int64)
    means = np.stack([lerp("", a, unorm(pos, s, b)) for a, s, b in (("x", 21, 11), ("y", 11, 10), ("z", 0, 11))], 1)
    scales = np.stack(
        [lerp("scale_", a, unorm(scale, s, b)) for a, s, b in (("x", 21, 11), ("y", 11, 10), ("z", 0, 11))], 1
    )
    colour = vertex["packed_color"].astype(np.int64)
    rgb = np.stack([lerp("", a, unorm(colour, s, 8)) for a, s in (("r", 24), ("g", 16), ("b", 8))], 1)
    alpha = unorm(colour, 0, 8)
    rot = vertex["packed_rotation"].astype(np.int64)
    quats = []
    for value in rot:
        abc = [(unorm(value, s, 10) - 0.5) / math.sqrt(0.5) for s in (20, 10, 0)]
        m = math.sqrt(max(0.0, 1 - sum(v * v for v in abc)))
        q: list[float] = [float(v) for v in abc]
        q.insert(value >> 30, m)  # the largest component goes back at its index (rot_0..3)
        quats.append(q)
    out = {
        "means": means,
        "scales": scales,
        "sh0": (rgb - 0.5) / SH_C0,
        "alpha": alpha,
        "quats": np.array(quats),
    }
    if "sh" in ply:
        sh = ply["sh"].data
        rest = np.stack([sh[name] for name in sh.dtype.names], axis=1).astype(np.float64)
        out["shN"] = ((rest + 0.5) / 256 - 0.5) * 8
    return out, len(chunk)


@pytest.mark.parametrize("sh_degree", [0, 2])
def test_compressed_ply_decodes_per_the_playcanvas_layout_to_the_splats(tmp_path: Path, sh_degree: int) -> None:
    splats = bounded_splats(700, sh_degree, seed=30 + sh_degree)
    path = tmp_path / "scene.compressed.ply"
    assert write_compressed_ply(path, splats, comments=["made by a test"]) == 700
    decoded, n_chunks = decode_compressed_ply_from_the_layout_text(path)
    assert n_chunks == 3  # ⌈700 / 256⌉
    assert b"comment made by a test\n" in path.read_bytes()[:2000]

    source = prepare_splats(splats)
    # the writer reorders (Morton curve): match every decoded splat to its source by position
    distance = np.linalg.norm(decoded["means"][:, None] - source["means"][None], axis=2)
    match = distance.argmin(axis=1)
    assert len(set(match.tolist())) == 700
    extent = source["means"].max(axis=0) - source["means"].min(axis=0)
    assert (np.abs(decoded["means"] - source["means"][match]) <= extent / 1023 + 1e-6).all()  # ≤ the chunk's step
    np.testing.assert_allclose(decoded["scales"], source["scales"][match], atol=0.05)
    np.testing.assert_allclose(decoded["sh0"], source["sh0"][match], atol=0.5 / 255 * 4.6 / SH_C0 + 1e-6)
    np.testing.assert_allclose(decoded["alpha"], 1 / (1 + np.exp(-source["opacities"][match])), atol=0.5 / 255 + 1e-9)
    unit = source["quats"][match] / np.linalg.norm(source["quats"][match], axis=1, keepdims=True)
    assert np.abs(np.abs((decoded["quats"] * unit).sum(axis=1)) - 1).max() < 1e-3
    if sh_degree:
        rest = source["shN"][match].transpose(0, 2, 1).reshape(700, -1)  # channel-major, as f_rest_*
        np.testing.assert_allclose(decoded["shN"], rest, atol=0.5 / 256 * 8 + 1e-9)  # trunc, decoded at the byte centre
    else:
        assert "shN" not in decoded

    ours = read_compressed_ply(path)
    np.testing.assert_allclose(ours["means"], decoded["means"], atol=1e-6)
    np.testing.assert_allclose(ours["scales"], decoded["scales"], atol=1e-6)
    np.testing.assert_allclose(ours["quats"], decoded["quats"], atol=1e-9)


def test_compressed_ply_is_about_a_quarter_of_scene_ply_at_sh_degree_3(tmp_path: Path) -> None:
    from gs_worker.export import write_ply

    splats = bounded_splats(2000, 3, seed=40)
    write_ply(tmp_path / "scene.ply", splats)
    write_compressed_ply(tmp_path / "scene.compressed.ply", splats)
    write_spz(tmp_path / "scene.spz", splats)
    ply, compressed, spz = ((tmp_path / n).stat().st_size for n in ("scene.ply", "scene.compressed.ply", "scene.spz"))
    assert ply / compressed > 3.5  # 248 bytes a splat against 16 + 45 (+ 72 per 256 for the chunk)
    assert spz < compressed
