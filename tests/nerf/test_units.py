"""Rays, the scene box, the VM field, the grid schedule and chunked rendering."""

from __future__ import annotations

import numpy as np
import torch

from nerf_worker.model import TensorVM, grid_resolution
from nerf_worker.rays import image_rays, near_far, project, rays_at_pixels
from nerf_worker.render import render_image
from nerf_worker.scene_box import scene_box
from nerf_worker.schedule import GridSchedule
from shared.camera_path import look_at
from shared.manifest import PinholeCamera
from shared.synthetic_scene import UP

CAMERA = PinholeCamera(fx=40.0, fy=40.0, cx=24.0, cy=16.0, width=48, height=32)
AABB = torch.tensor([[-0.5, -0.4, -0.6], [0.5, 0.4, 0.6]])


def _pose(center: tuple[float, float, float] = (0.3, -0.4, -1.6)) -> np.ndarray:
    return look_at(np.array(center), np.zeros(3), UP)


def _dense_model(seed: int = 0, resolution: tuple[int, int, int] = (12, 10, 14)) -> TensorVM:
    torch.manual_seed(seed)
    return TensorVM(
        AABB, list(resolution), density_components=3, appearance_components=4, density_shift=0.0, init_scale=0.5
    )


def test_rays_through_projected_points_pass_through_the_points_at_their_distance() -> None:
    pose = torch.as_tensor(_pose(), dtype=torch.float32)
    points = torch.rand(50, 3) * 0.6 - 0.3  # [50, 3]
    uv, z = project(CAMERA, pose, points)
    origins, dirs = rays_at_pixels(CAMERA, pose[None], uv)
    distance = (points - origins).norm(dim=-1)
    assert (z > 0).all()
    torch.testing.assert_close(origins + distance[:, None] * dirs, points, atol=1e-5, rtol=0)


def test_image_rays_follow_the_opencv_convention_right_and_down() -> None:
    pose = torch.eye(4)
    _, dirs = image_rays(CAMERA, pose)
    dirs = dirs.view(CAMERA.height, CAMERA.width, 3)
    assert dirs[0, -1, 0] > 0 and dirs[0, 0, 0] < 0  # x grows to the right
    assert dirs[-1, 0, 1] > 0 and dirs[0, 0, 1] < 0  # y grows downwards
    assert (dirs[..., 2] > 0).all()  # looking along +z


def test_near_far_brackets_the_box_and_rays_that_miss_it_are_empty() -> None:
    origins = torch.tensor([[0.0, 0.0, -2.0], [0.0, 2.0, -2.0]])
    dirs = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    near, far = near_far(origins, dirs, AABB, min_near=0.05)
    torch.testing.assert_close(near[0], torch.tensor(1.4))
    torch.testing.assert_close(far[0], torch.tensor(2.6))
    assert far[1] <= near[1]


def test_scene_box_ignores_stray_points_and_covers_the_subject_and_the_cameras() -> None:
    rng = np.random.default_rng(0)
    subject = rng.uniform(-0.4, 0.4, (2000, 3))
    strays = rng.uniform(-40, 40, (20, 3))
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    cameras = np.stack([np.cos(angles), np.zeros(12), np.sin(angles)], axis=1)
    box = scene_box(np.concatenate([subject, strays]), cameras)
    inside = ((subject >= box[0]) & (subject <= box[1])).all(1)
    assert inside.mean() > 0.95
    assert ((cameras > box[0]) & (cameras < box[1])).all()  # what lies beside a camera fills its frames' edges
    assert (box[1] - box[0] < 2.5).all()  # the strays 40 units away stretch nothing


def test_upsampling_schedule_grows_the_grid_through_the_configured_voxel_counts() -> None:
    nx, ny, nz = grid_resolution(AABB, 8**3)
    model = _dense_model(resolution=(nx, ny, nz))
    schedule = GridSchedule(n_voxels_init=8**3, n_voxels_final=24**3, upsample_steps=(2, 5))
    state = schedule.initialize_state()
    points = torch.rand(200, 3) * (AABB[1] - AABB[0]) + AABB[0]
    before = model.density(points)
    sizes = []
    for step in range(7):
        event = schedule.step_post_backward(step, model, state)
        assert event.upsampled == (step in (2, 5))
        sizes.append(list(model.resolution))
    counts = schedule.voxel_counts()
    assert counts[-1] == 24**3 and 8**3 < counts[0] < 24**3
    assert sizes[1] == grid_resolution(AABB, 8**3)
    assert sizes[2] == sizes[4] == grid_resolution(AABB, counts[0])
    assert sizes[6] == grid_resolution(AABB, 24**3)
    nx, ny, nz = sizes[6]
    assert model.density_planes[0].shape == (1, 3, ny, nx)  # xy-plane
    assert model.density_lines[0].shape == (1, 3, nz, 1)  # z-line
    assert model.appearance_planes[2].shape == (1, 4, nz, ny)  # yz-plane
    assert state.upsamples_done == 2
    # upsampling resamples the same field: densities stay close to what they were
    after = model.density(points)
    assert torch.corrcoef(torch.stack([before.log(), after.log()]))[0, 1] > 0.9


def test_alpha_mask_update_empties_the_cells_without_density_and_rendering_skips_them() -> None:
    model = TensorVM(AABB, [20, 16, 24], density_components=1, appearance_components=2, density_shift=-10.0)
    with torch.no_grad():
        for plane, line in zip(model.density_planes, model.density_lines, strict=True):
            plane.zero_()
            line.zero_()
        model.density_planes[2].fill_(1.0)  # the yz-plane ...
        model.density_lines[2][0, 0, :10, 0] = 30.0  # ... times an x-line that is dense for x < 0 only
    schedule = GridSchedule(n_voxels_init=20 * 16 * 24, n_voxels_final=20 * 16 * 24, alpha_mask_steps=(3,))
    state = schedule.initialize_state()
    for step in range(3):
        assert not schedule.step_post_backward(step, model, state).masked
        assert model.alpha_mask.shape == (1, 1, 1)
    assert schedule.step_post_backward(3, model, state).masked
    assert model.alpha_mask.shape == (24, 16, 20)
    assert 0.3 < state.empty_fraction < 0.6
    dense = torch.tensor([[-0.4, 0.0, 0.0]])
    empty = torch.tensor([[0.4, 0.0, 0.0]])
    assert model.occupied(dense).item() and not model.occupied(empty).item()
    assert not model.occupied(torch.tensor([[0.0, 0.0, 5.0]])).item()  # outside the box


def test_chunked_rendering_equals_rendering_all_rays_at_once() -> None:
    model = _dense_model()
    pose = _pose()
    whole = render_image(model, CAMERA, pose, min_near=0.05, chunk=CAMERA.width * CAMERA.height)
    chunked = render_image(model, CAMERA, pose, min_near=0.05, chunk=97)
    assert whole.opacity.max() > 0.5  # the view sees the field, not only the background
    np.testing.assert_allclose(chunked.rgb, whole.rgb, atol=1e-5)
    np.testing.assert_allclose(chunked.depth, whole.depth, atol=1e-4)
    np.testing.assert_allclose(chunked.opacity, whole.opacity, atol=1e-5)


def _slab_model() -> TensorVM:
    """A field whose only content is a thin opaque slab across the box at z = 0.1 (one voxel thick)."""
    from nerf_worker.model import LINE_AXES

    model = TensorVM(
        torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]), [32, 32, 32], density_components=1, step_ratio=1.0
    )
    with torch.no_grad():
        for plane, line, axis in zip(model.density_planes, model.density_lines, LINE_AXES, strict=True):
            plane.zero_()
            line.zero_()
            if axis == 2:  # the split whose line runs along z: constant plane × a one-voxel bump on the line
                plane.fill_(1.0)
                line[0, 0, round((0.1 + 1.0) / 2.0 * 31), 0] = 14.0
    return model


def test_rendering_at_the_render_step_shows_a_thin_surface_evenly_where_the_training_step_draws_rings() -> None:
    from shared.options.nerf import TensorfOptions

    model = _slab_model()
    camera = PinholeCamera(fx=30.0, fy=30.0, cx=32.0, cy=24.0, width=64, height=48)
    pose = look_at(np.array([0.0, -0.3, -0.8]), np.array([0.4, 0.2, 0.1]), UP)  # inside the box, oblique view
    coarse = render_image(model, camera, pose, min_near=0.05).opacity  # samples one voxel apart: rings
    fine = render_image(model, camera, pose, min_near=0.05, step_ratio=TensorfOptions().render_step_ratio).opacity
    seen = fine > 0.5  # pixels whose ray crosses the slab
    assert seen.mean() > 0.3
    assert coarse[seen].std() > 3.0 * fine[seen].std()
    # at the training step a quarter of the surface lets light through between the rings; at the render step ~none
    assert (coarse[seen] < 0.8).mean() > 0.2 and (fine[seen] < 0.8).mean() < 0.02
