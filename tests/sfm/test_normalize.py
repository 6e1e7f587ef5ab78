"""sfm_worker.normalize: the similarity into the normalised world, and Umeyama alignment."""

from __future__ import annotations

import numpy as np

from sfm_worker.normalize import SimilarityTransform, camera_centers, normalizing_similarity, umeyama
from shared.synthetic_scene import LOOK_AT, orbit_cam_from_world


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _scrambled_orbit() -> tuple[np.ndarray, SimilarityTransform]:
    """An orbit (−y up, centred near the origin) seen in an arbitrary COLMAP-like frame."""
    truth = orbit_cam_from_world(24)[:, :3, :]  # [N, 3, 4]
    rng = np.random.default_rng(3)
    colmap_from_truth = SimilarityTransform(scale=7.5, rotation=_random_rotation(rng), translation=rng.normal(size=3))
    return colmap_from_truth.apply_cam_from_world(truth), colmap_from_truth


def test_normalised_cameras_are_centred_on_their_focus_within_unit_radius_with_minus_y_up() -> None:
    cams, colmap_from_truth = _scrambled_orbit()
    sim = normalizing_similarity(cams)
    centers = camera_centers(sim.apply_cam_from_world(cams))
    assert np.isclose(np.linalg.norm(centers, axis=1).max(), 1.0)
    # the point the orbit looks at becomes the origin
    focus = sim.apply_points(colmap_from_truth.apply_points(LOOK_AT[None]))[0]
    assert np.linalg.norm(focus) < 0.05
    # the truth's down (+y) is the normalised world's down (the orbit bobs, so its plane tilts by ~3°)
    truth_down_in_world = sim.rotation @ colmap_from_truth.rotation @ np.array([0.0, 1.0, 0.0])
    assert truth_down_in_world[1] > np.cos(np.radians(5.0))


def test_normalisation_keeps_projections_unchanged() -> None:
    cams, _ = _scrambled_orbit()
    sim = normalizing_similarity(cams)
    world = sim.apply_cam_from_world(cams)
    point_colmap = np.array([0.3, -0.2, 0.5])
    point_world = sim.apply_points(point_colmap[None])[0]
    for before, after in zip(cams, world, strict=True):
        a = before[:, :3] @ point_colmap + before[:, 3]
        b = after[:, :3] @ point_world + after[:, 3]
        np.testing.assert_allclose(a[:2] / a[2], b[:2] / b[2], atol=1e-9)
        np.testing.assert_allclose(after[:, :3] @ after[:, :3].T, np.eye(3), atol=1e-9)


def test_umeyama_recovers_a_known_similarity() -> None:
    rng = np.random.default_rng(0)
    source = rng.normal(size=(20, 3))
    truth = SimilarityTransform(scale=2.5, rotation=_random_rotation(rng), translation=np.array([1.0, -2.0, 0.5]))
    found = umeyama(source, truth.apply_points(source))
    assert np.isclose(found.scale, 2.5)
    np.testing.assert_allclose(found.rotation, truth.rotation, atol=1e-9)
    np.testing.assert_allclose(found.translation, truth.translation, atol=1e-9)
