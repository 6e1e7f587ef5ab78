"""Clean-up before export: planted floaters on the synthetic scene are removed, the scene and its PSNR are kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from gs_worker.cleanup import cleanup_mask, subset
from gs_worker.export_all import clean_for_export
from gs_worker.init import init_splats, logit
from gs_worker.model import create_params
from gs_worker.overlay import static_overlay_mask
from gs_worker.pipeline import evaluate_splats
from gs_worker.scene_frame import ExportFrame, export_frame
from shared.camera_path import focus_point
from shared.heldout import HeldoutMetrics
from shared.options.gs import CropBox, SplatOptions
from shared.scene_loader import SceneData, load_scene

OPTIONS = SplatOptions.from_preset("preview", device="cpu")


@pytest.fixture(scope="module")
def scene(tiny_scene: Path) -> SceneData:
    return load_scene(tiny_scene, 64)


@pytest.fixture(scope="module")
def frame(scene: SceneData) -> ExportFrame:
    return export_frame(scene.manifest, scene.points_xyz)


def scene_splats(scene: SceneData) -> dict[str, np.ndarray]:
    """One opaque Gaussian at each SfM point: a scene that looks like the capture, with no floaters."""
    splats = init_splats(scene.points_xyz, scene.points_rgb, sh_degree=0, init_opacity=0.8, max_points=10_000)
    return {k: np.asarray(v, dtype=np.float32) for k, v in splats.items()}


def with_floaters(splats: dict[str, np.ndarray], scene: SceneData) -> tuple[dict[str, np.ndarray], dict[str, list]]:
    """The splats plus planted floaters of each kind; returns the splats and each kind's indices."""
    held_out = scene.test_frames
    centres = np.stack([f.camera_center() for f in held_out])
    forward = np.stack([f.cam_from_world_matrix()[2, :3] for f in held_out])
    rng = np.random.default_rng(7)
    planted: dict[str, list[tuple[np.ndarray, float, float]]] = {  # position, σ, opacity
        # white blobs in front of the held-out cameras' lenses, like a video's UI badge rebuilt
        "near_camera": [(c + 0.03 * f, 0.02, 0.9) for c, f in zip(centres, forward, strict=True)],
        # large blurry blobs between the cameras and the scene
        "huge": [(c + 0.3 * f, 0.3, 0.6) for c, f in zip(centres, forward, strict=True)],
        # faint haze over the scene
        "low_opacity": [(rng.uniform(-0.3, 0.3, 3), 0.05, 0.004) for _ in range(4)],
        # lone specks in the empty air above the objects
        "isolated": [(np.array([x, -0.3, z]), 0.01, 0.3) for x, z in ((0.15, 0.1), (-0.2, -0.15), (0.05, 0.3))],
        # far outside the scene and behind every camera
        "cropped": [
            (np.array([25.0, -3.0, 4.0]), 0.2, 0.9),
            (np.array([0.0, -0.2, 0.0]) - 4.0 * forward.mean(0), 0.1, 0.9),
        ],
    }
    out = {k: list(v) for k, v in splats.items()}
    indices: dict[str, list] = {}
    n = len(splats["means"])
    for kind, floaters in planted.items():
        indices[kind] = []
        for position, sigma, opacity in floaters:
            out["means"].append(position.astype(np.float32))
            out["scales"].append(np.full(3, np.log(sigma), dtype=np.float32))
            out["quats"].append(np.array([1, 0, 0, 0], dtype=np.float32))
            out["opacities"].append(np.float32(logit(opacity)))
            out["sh0"].append(np.full((1, 3), 1.7, dtype=np.float32))  # white
            out["shN"].append(np.zeros((0, 3), dtype=np.float32))
            indices[kind].append(n)
            n += 1
    return {k: np.stack(v) for k, v in out.items()}, indices


def psnr(splats: dict[str, np.ndarray], scene: SceneData) -> float:
    return evaluate_splats(create_params(splats, torch.device("cpu")), scene, 0)["psnr"]


def test_every_planted_floater_goes_and_the_held_out_psnr_is_kept(scene: SceneData, frame: ExportFrame) -> None:
    clean = scene_splats(scene)
    dirty, planted = with_floaters(clean, scene)
    keep, report = cleanup_mask(dirty, scene.manifest, scene.points_xyz, frame, OPTIONS)

    for kind, indices in planted.items():
        assert not keep[indices].any(), f"{kind} floaters kept: {[i for i in indices if keep[i]]}"
        assert report.removed[kind] >= len(indices), kind
    n_clean = len(clean["means"])
    assert keep[:n_clean].mean() > 0.97  # the scene itself stays
    assert report.kept_count == int(keep.sum()) == report.input_count - sum(report.removed.values())

    reference, polluted, cleaned = psnr(clean, scene), psnr(dirty, scene), psnr(subset(dirty, keep), scene)
    assert polluted < reference - 1.0  # the floaters do spoil the held-out views
    assert cleaned >= reference - 0.2


def test_crop_none_keeps_what_lies_outside_and_a_box_keeps_only_its_inside(
    scene: SceneData, frame: ExportFrame
) -> None:
    dirty, planted = with_floaters(scene_splats(scene), scene)
    far = planted["cropped"][0]
    keep, report = cleanup_mask(
        dirty, scene.manifest, scene.points_xyz, frame, OPTIONS.model_copy(update={"crop": "none", "cleanup": False})
    )
    assert keep.all() and report.removed["cropped"] == 0 and report.crop == "none"

    box = CropBox(min=(-0.2, -1.0, -0.2), max=(0.2, 0.5, 0.2))  # exported frame: y = 0 is the ground
    keep, report = cleanup_mask(
        dirty, scene.manifest, scene.points_xyz, frame, OPTIONS.model_copy(update={"crop": box, "cleanup": False})
    )
    inside = frame.apply_points(dirty["means"])
    expected = ((inside >= box.min) & (inside <= box.max)).all(axis=1)
    np.testing.assert_array_equal(keep, expected)
    assert report.crop == "box" and not keep[far]


def test_crop_options_accept_auto_none_a_box_or_six_numbers_and_refuse_bad_boxes() -> None:
    assert SplatOptions(crop="auto").crop == "auto"
    assert SplatOptions(crop="-1,0,-1,1,2,1").crop == CropBox(min=(-1, 0, -1), max=(1, 2, 1))
    assert SplatOptions.model_validate({"crop": {"min": [0, 0, 0], "max": [1, 1, 1]}}).crop == CropBox(
        min=(0, 0, 0), max=(1, 1, 1)
    )
    for bad in ("sometimes", "1,2,3", "0,0,0,1,1,x", {"min": [1, 0, 0], "max": [0, 1, 1]}, "0,0,0,1e9,1,1"):
        with pytest.raises(ValidationError):
            SplatOptions(crop=bad)


def test_when_the_floater_steps_cost_too_much_psnr_they_are_undone_and_the_crop_stays(
    scene: SceneData, frame: ExportFrame
) -> None:
    dirty, planted = with_floaters(scene_splats(scene), scene)
    before: HeldoutMetrics = {"psnr": 30.0, "ssim": 0.9, "n_frames": 2, "frames": []}
    scored: list[int] = []

    def evaluate(splats: dict[str, np.ndarray]) -> HeldoutMetrics:
        scored.append(len(splats["means"]))
        return {"psnr": 29.0, "ssim": 0.9, "n_frames": 2, "frames": []}  # every clean-up "costs" 1 dB

    result = clean_for_export(dirty, scene.manifest, scene.points_xyz, frame, OPTIONS, before, evaluate)
    assert result.floaters_undone
    assert result.report.removed["near_camera"] == result.report.removed["isolated"] == 0
    assert result.report.removed["cropped"] >= len(planted["cropped"])
    assert len(result.splats["means"]) == result.report.kept_count == scored[-1]


def test_a_static_badge_in_the_frames_is_found_and_the_splats_that_only_draw_it_go(
    scene: SceneData, frame: ExportFrame
) -> None:
    frames = [scene.images[f.file].copy() for f in scene.manifest.frames]
    assert static_overlay_mask(frames) is None  # the camera moves: nothing stays put
    for image in frames:
        image[2:8, 44:62] = (1.0, 1.0, 1.0)  # a white "Connected" badge, top right
    mask = static_overlay_mask(frames)
    assert mask is not None and mask[2:8, 44:62].all() and mask.mean() < 0.1

    # a splat that sits where the cameras look is drawn at the image centre in every view
    splats, _ = with_floaters(scene_splats(scene), scene)
    target = focus_point(np.stack([f.cam_from_world_matrix() for f in scene.manifest.frames]))
    splats["means"] = np.concatenate([splats["means"], target[None].astype(np.float32)])
    for key in ("scales", "quats", "opacities", "sh0", "shN"):
        splats[key] = np.concatenate([splats[key], splats[key][-1:]])
    centre = np.zeros_like(mask)
    centre[14:22, 28:36] = True  # a logo in the middle of the picture
    keep, report = cleanup_mask(splats, scene.manifest, scene.points_xyz, frame, OPTIONS, overlay=centre)
    assert not keep[-1] and report.removed["overlay"] >= 1
    assert report.removed["overlay"] < 0.05 * len(keep)  # the scene's own splats move across the picture
