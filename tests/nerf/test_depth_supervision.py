"""DS-NeRF depth supervision: with few views, SfM depth makes the field's geometry right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nerf_worker.depth_targets import depth_targets
from nerf_worker.pipeline import build_model
from nerf_worker.rays import image_rays
from nerf_worker.render import render_image
from nerf_worker.train import train
from shared.scene_loader import load_scene
from shared.synthetic_scene import render_view
from tests.nerf.tiny import tiny_options


def _heldout_depth_error(scene: Path, depth_weight: float) -> float:
    """Mean absolute z-depth error on the held-out views, over the pixels whose truth is inside 2 units."""
    options = tiny_options(iterations=150, depth_weight=depth_weight)
    data = load_scene(scene, options.max_long_side)
    depth = depth_targets(data, scene, error_scale_px=options.depth_error_scale_px)
    model = build_model(data, options, "cpu")
    train(model, data, depth, options)
    errors = []
    cam = data.camera
    for frame in data.manifest.split("test"):
        pose = frame.cam_from_world_matrix()
        _, truth = render_view(pose, cam.K(), cam.width, cam.height)  # [H, W] z-depth
        out = render_image(model, cam, pose, min_near=options.min_near)
        _, dirs = image_rays(cam, torch.as_tensor(pose, dtype=torch.float32))
        z = out.depth.reshape(-1) * (dirs.numpy() @ pose[2, :3])  # distance along the ray -> camera z
        near = truth.reshape(-1) < 2.0  # the backdrop lies outside the scene box
        errors.append(np.abs(z - truth.reshape(-1))[near])
    return float(np.concatenate(errors).mean())


@pytest.mark.slow
def test_depth_supervision_gives_lower_heldout_depth_error_than_none_with_few_views(few_view_scene: Path) -> None:
    with_depth = _heldout_depth_error(few_view_scene, depth_weight=0.1)
    without = _heldout_depth_error(few_view_scene, depth_weight=0.0)
    assert with_depth < 0.75 * without, (with_depth, without)
