"""scene.ply and scene.splat, checked with plyfile, an independent .splat decoder and gsplat's exporter."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from gsplat import export_splats
from plyfile import PlyData

from gs_worker.export import read_ply, read_splat, write_ply, write_splat

SH_C0 = 0.28209479


def make_splats(n: int = 12, sh_degree: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    """Trainer-layout parameters: log scales, logit opacities, unnormalised w-first quaternions, sh0 + shN."""
    gen = torch.Generator().manual_seed(seed)
    k = (sh_degree + 1) ** 2
    return {
        "means": torch.randn(n, 3, generator=gen),
        "quats": torch.randn(n, 4, generator=gen) * 2.0,
        "scales": torch.randn(n, 3, generator=gen) - 3.0,
        "opacities": torch.randn(n, generator=gen) * 2.0,
        "sh0": torch.randn(n, 1, 3, generator=gen),
        "shN": torch.randn(n, k - 1, 3, generator=gen) * 0.2,
    }


def importance_order(splats: dict[str, torch.Tensor]) -> np.ndarray:
    """Indices by exp(Σ log scale)·sigmoid(opacity), largest first (the format description's order)."""
    score = torch.exp(splats["scales"].double().sum(1)) * torch.sigmoid(splats["opacities"].double())
    return np.argsort(-score.numpy(), kind="stable")


def expected_ply_names(sh_degree: int) -> list[str]:
    n_rest = 3 * ((sh_degree + 1) ** 2 - 1)
    return (
        ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
        + [f"f_rest_{i}" for i in range(n_rest)]
        + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    )


def decode_splat_file(path: Path) -> list[tuple]:
    """Decode antimatter15 .splat records from the format description: 3f position, 3f scale, 4B rgba, 4B rot."""
    data = path.read_bytes()
    return [struct.unpack_from("<3f3f4B4B", data, offset) for offset in range(0, len(data), 32)]


@pytest.mark.parametrize("sh_degree", [0, 1, 3])
def test_scene_ply_has_the_inria_properties_in_order_with_logit_log_and_w_first_values(tmp_path: Path, sh_degree: int):
    splats = make_splats(sh_degree=sh_degree)
    path = tmp_path / "scene.ply"
    assert write_ply(path, splats) == 12

    ply = PlyData.read(str(path))
    assert not ply.text and ply.byte_order == "<"
    vertex = ply["vertex"]
    assert [p.name for p in vertex.properties] == expected_ply_names(sh_degree)
    assert all(vertex.data.dtype[name] == np.dtype("<f4") for name in vertex.data.dtype.names)

    order = importance_order(splats)
    rows = vertex.data
    np.testing.assert_array_equal(np.stack([rows["x"], rows["y"], rows["z"]], 1), splats["means"].numpy()[order])
    for name in ("nx", "ny", "nz"):
        assert (rows[name] == 0).all()
    np.testing.assert_array_equal(rows["opacity"], splats["opacities"].numpy()[order])  # logit, untouched
    for i in range(3):
        np.testing.assert_array_equal(rows[f"scale_{i}"], splats["scales"].numpy()[order, i])  # log
        np.testing.assert_array_equal(rows[f"f_dc_{i}"], splats["sh0"].numpy()[order, 0, i])
    for i in range(4):
        np.testing.assert_array_equal(rows[f"rot_{i}"], splats["quats"].numpy()[order, i])  # w, x, y, z
    n_coeffs = (sh_degree + 1) ** 2 - 1
    for channel in range(3):  # channel-major: all red coefficients, then green, then blue
        for k in range(n_coeffs):
            np.testing.assert_array_equal(
                rows[f"f_rest_{channel * n_coeffs + k}"], splats["shN"].numpy()[order, k, channel]
            )


def test_scene_ply_round_trip_reproduces_the_parameters(tmp_path: Path):
    splats = make_splats(n=50, sh_degree=2, seed=1)
    splats["means"].requires_grad_()  # trainer parameters arrive with grad
    write_ply(tmp_path / "scene.ply", splats)
    back = read_ply(tmp_path / "scene.ply")
    order = importance_order(splats)
    for key, value in splats.items():
        np.testing.assert_array_equal(back[key], value.detach().numpy()[order], err_msg=key)


def test_scene_splat_is_32_bytes_a_splat_and_decodes_to_the_described_values(tmp_path: Path):
    splats = make_splats(n=40, sh_degree=1, seed=2)
    splats["sh0"][0, 0, 0] = 10.0  # colour beyond 1 is clipped to 255
    splats["sh0"][1, 0, 1] = -10.0  # and below 0 to 0
    path = tmp_path / "scene.splat"
    assert write_splat(path, splats) == 40
    assert path.stat().st_size == 32 * 40

    order = importance_order(splats)
    records = decode_splat_file(path)
    means, scales = splats["means"].double().numpy(), splats["scales"].double().numpy()
    sh0, opacities, quats = (
        splats["sh0"].double().numpy(),
        splats["opacities"].double().numpy(),
        splats["quats"].double().numpy(),
    )
    for row, i in zip(records, order, strict=True):
        np.testing.assert_allclose(row[0:3], means[i], rtol=1e-6)
        np.testing.assert_allclose(row[3:6], np.exp(scales[i]), rtol=1e-6)
        rgb = np.clip(0.5 + SH_C0 * sh0[i, 0], 0, 1) * 255
        alpha = 255 / (1 + np.exp(-opacities[i]))
        np.testing.assert_allclose(row[6:10], [*rgb, alpha], atol=1.0)
        unit = quats[i] / np.linalg.norm(quats[i])
        np.testing.assert_allclose(row[10:14], unit * 128 + 128, atol=1.0)
    assert records[list(order).index(0)][6] == 255 and records[list(order).index(1)][7] == 0

    decoded = read_splat(path)
    np.testing.assert_allclose(decoded["means"], np.array([r[0:3] for r in records]))
    np.testing.assert_allclose(decoded["quats"], (np.array([r[10:14] for r in records]) - 128) / 128)


def test_exports_list_the_largest_most_opaque_splats_first(tmp_path: Path):
    splats = make_splats(n=30, sh_degree=0, seed=3)
    write_ply(tmp_path / "scene.ply", splats)
    write_splat(tmp_path / "scene.splat", splats)
    ply = read_ply(tmp_path / "scene.ply")
    score = np.exp(ply["scales"].astype(np.float64).sum(1)) / (1 + np.exp(-ply["opacities"].astype(np.float64)))
    assert (np.diff(score) <= 0).all()
    records = read_splat(tmp_path / "scene.splat")
    splat_score = np.prod(records["scales"].astype(np.float64), axis=1) * records["rgba"][:, 3]
    assert splat_score[0] == splat_score.max()
    np.testing.assert_array_equal(records["means"], ply["means"])


def test_splats_with_non_finite_parameters_are_left_out(tmp_path: Path):
    splats = make_splats(n=10, sh_degree=1, seed=4)
    splats["means"][2, 1] = float("nan")
    splats["shN"][5, 0, 2] = float("inf")
    assert write_ply(tmp_path / "scene.ply", splats) == 8
    assert write_splat(tmp_path / "scene.splat", splats) == 8
    assert (tmp_path / "scene.splat").stat().st_size == 8 * 32
    assert np.isfinite(read_ply(tmp_path / "scene.ply")["shN"]).all()


def test_scene_ply_agrees_with_gsplat_export_splats_apart_from_normals_and_order(tmp_path: Path):
    splats = make_splats(n=25, sh_degree=3, seed=5)
    write_ply(tmp_path / "ours.ply", splats)
    export_splats(**splats, format="ply", save_to=str(tmp_path / "gsplat.ply"))
    ours, theirs = (
        PlyData.read(str(tmp_path / "ours.ply"))["vertex"],
        PlyData.read(str(tmp_path / "gsplat.ply"))["vertex"],
    )
    their_names = [p.name for p in theirs.properties]
    assert [p.name for p in ours.properties if p.name not in ("nx", "ny", "nz")] == their_names
    order = importance_order(splats)
    for name in their_names:
        np.testing.assert_array_equal(ours.data[name], theirs.data[name][order], err_msg=name)


def test_scene_splat_holds_the_same_records_as_gsplat_export_splats_in_importance_order(tmp_path: Path):
    splats = make_splats(n=25, sh_degree=1, seed=6)
    write_splat(tmp_path / "ours.splat", splats)
    export_splats(**splats, format="splat", save_to=str(tmp_path / "gsplat.splat"))
    ours, theirs = decode_splat_file(tmp_path / "ours.splat"), decode_splat_file(tmp_path / "gsplat.splat")
    by_position = {row[0:3]: row for row in theirs}  # gsplat writes Morton order; match records by position
    assert len(ours) == len(theirs) == 25
    for row in ours:
        other = by_position[row[0:3]]
        np.testing.assert_allclose(row[3:6], other[3:6], rtol=1e-6)
        assert max(abs(a - b) for a, b in zip(row[6:], other[6:], strict=True)) <= 1  # float32 vs float64 bytes
