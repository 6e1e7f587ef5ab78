"""Accuracy and seconds per step of structure from motion (a benchmark, not a test).

Scenes: the project's synthetic orbit (``shared.synthetic_scene.render_capture``, known cameras)
and, with ``--garden``, the real garden capture (``tests.fixtures.data_files.GARDEN_VIDEO``). For the
synthetic scene the estimated cameras are aligned to the truth by a similarity (Umeyama) and the
errors are printed beside the limits ``tests/sfm/test_sfm_synthetic.py`` asserts (the limit column), as
a ratio (below 1 passes).

Usage:
    python bench/bench_sfm.py [--size 256x144] [--frames 36] [--features 2048] [--garden] [--preset preview]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from sfm_worker.normalize import camera_centers, umeyama
from sfm_worker.pipeline import SfmResult, run_sfm
from shared.manifest import SceneManifest
from shared.options.sfm import SfmOptions
from shared.synthetic_scene import render_capture

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.fixtures

from tests.fixtures.data_files import GARDEN_VIDEO


def _seconds_table(name: str, result: SfmResult) -> None:
    print(
        f"\n{name}: {result.frames_registered}/{result.frames_selected} frames registered "
        f"({result.frames_decoded} decoded), {result.num_points} points, "
        f"reprojection error {result.mean_reprojection_error:.3f} px, fallback {result.fallback_used}"
    )
    print(f"{'step':<18}{'seconds':>10}")
    for step, seconds in result.seconds.items():
        print(f"{step:<18}{seconds:>10.2f}")


def _synthetic(width: int, height: int, frames: int, features: int, work: Path) -> None:
    capture = render_capture(work / "capture", width=width, height=height, n_frames=frames, fps=30.0)
    options = SfmOptions.from_preset("preview", max_frames=frames, max_num_features=features, min_frames=8)
    result = run_sfm(capture.video, work / "synthetic", options)
    manifest = SceneManifest.load(result.scene_dir)
    truth = capture.cam_from_world[[f.video_frame for f in manifest.frames]]
    estimate = np.stack([f.cam_from_world_matrix() for f in manifest.frames])
    align = umeyama(camera_centers(estimate), camera_centers(truth))
    centre = np.linalg.norm(align.apply_points(camera_centers(estimate)) - camera_centers(truth), axis=1)
    relative = np.einsum("nij,nkj->nik", estimate[:, :3, :3] @ align.rotation.T, truth[:, :3, :3])
    angles = np.degrees(np.arccos(np.clip((np.trace(relative, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    focal = abs(manifest.camera.fx / capture.K[0, 0] - 1)  # undistortion keeps the focal, crops the border
    rows = [
        ("max centre error / radius", centre.max() / capture.scene_radius, 0.01),
        ("max rotation error (deg)", angles.max(), 0.5),
        ("focal error (relative)", focal, 0.02),
    ]
    print(f"synthetic orbit {width}x{height}, {frames} frames, {features} features")
    print(f"{'metric':<28}{'ours':>10}{'limit':>10}{'ratio':>8}")
    for name, ours, limit in rows:
        print(f"{name:<28}{ours:>10.4f}{limit:>10.4f}{ours / limit:>8.2f}")
    _seconds_table("synthetic", result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="256x144", help="synthetic frame size WxH")
    parser.add_argument("--frames", type=int, default=36, help="synthetic frames (all selected)")
    parser.add_argument("--features", type=int, default=2048, help="SIFT features per synthetic frame")
    parser.add_argument("--garden", action="store_true", help="also run the garden video")
    parser.add_argument("--preset", default="preview", choices=("preview", "standard", "high"), help="garden preset")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        _synthetic(width, height, args.frames, args.features, Path(tmp))
        if args.garden:
            _seconds_table(
                f"garden ({args.preset})",
                run_sfm(GARDEN_VIDEO, Path(tmp) / "garden", SfmOptions.from_preset(args.preset)),
            )


if __name__ == "__main__":
    main()
