"""The capture check on real and made captures: each one's figures, verdict and seconds (a benchmark, not a test).

Captures: the real garden clip (``tests.fixtures.data_files.GARDEN_VIDEO``) as filmed, Gaussian- and
motion-blurred, sped up 8×, as a still shot (one frame repeated with sensor noise), as a camera
turning in place (one frame re-projected through a turning camera: no parallax), over- and
under-exposed; and the project's synthetic scene (``shared.synthetic_scene``) on a 150° orbit, a
full orbit and a camera turning in place. The variants are made here with PyAV and numpy (OpenCV
for the filters) into a temporary folder. The reference column is the verdict each capture should
get; the next column says whether ours matches it. ``seconds`` is the check's wall time, ``CPU s``
the CPU time of this process during it (all threads): on a busy shared machine the wall time
grows with the load, the CPU time much less, and on an idle 2-core machine the wall time is at most
about the CPU time. ``uptime``'s load average is printed with the times.

Usage:
    python bench/bench_capture_check.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from shared.camera_path import look_at
from shared.capture.check import check_capture
from shared.capture.report import CaptureReport
from shared.synthetic_scene import UP, intrinsics, orbit_cam_from_world, render_view
from shared.video import encode_h264, iter_frames, probe_video

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.fixtures

from tests.fixtures.data_files import GARDEN_VIDEO


def _garden_frames() -> list[np.ndarray]:
    return [rgb for _, _, rgb in iter_frames(GARDEN_VIDEO)]


def gaussian_blur(frames: list[np.ndarray], sigma_px: float = 3.0) -> Iterator[np.ndarray]:
    """Every frame blurred by a Gaussian of ``sigma_px`` (an out-of-focus capture)."""
    for rgb in frames:
        yield cv2.GaussianBlur(rgb, (0, 0), sigma_px)


def motion_blur(frames: list[np.ndarray], length_px: int = 21) -> Iterator[np.ndarray]:
    """Every frame smeared along a horizontal line of ``length_px`` (a fast pan with a slow shutter)."""
    kernel = np.full((1, length_px), 1.0 / length_px, np.float32)
    for rgb in frames:
        yield cv2.filter2D(rgb, -1, kernel)


def sped_up(frames: list[np.ndarray], factor: int = 8) -> list[np.ndarray]:
    """Every ``factor``-th frame, played at the same rate."""
    return frames[::factor]


def still(frames: list[np.ndarray], seed: int = 0) -> Iterator[np.ndarray]:
    """The middle frame for the whole length, with a little sensor noise."""
    rng = np.random.default_rng(seed)
    middle = frames[len(frames) // 2].astype(np.int16)
    for _ in frames:
        yield np.clip(middle + rng.integers(-2, 3, middle.shape), 0, 255).astype(np.uint8)


def turning_in_place(frames: list[np.ndarray], yaw_deg: float = 20.0) -> Iterator[np.ndarray]:
    """The middle frame seen by a camera that turns ``yaw_deg`` on the spot with a narrower lens (no parallax)."""
    source = frames[len(frames) // 2]
    h, w = source.shape[:2]
    f = 0.8 * max(h, w)
    K = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
    K_out = np.array([[1.6 * f, 0, w / 2], [0, 1.6 * f, h / 2], [0, 0, 1.0]])
    for yaw in np.radians(np.linspace(-yaw_deg / 2, yaw_deg / 2, len(frames))):
        c, s = np.cos(yaw), np.sin(yaw)
        R = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        H = K @ R @ np.linalg.inv(K_out)  # output pixel -> source pixel
        yield cv2.warpPerspective(source, H, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)


def exposure(frames: list[np.ndarray], gain: float, offset: float = 0.0) -> Iterator[np.ndarray]:
    """Every frame's levels scaled by ``gain`` plus ``offset``, clipped (a pushed or starved exposure)."""
    for rgb in frames:
        yield np.clip(rgb.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)


def synthetic_orbit(arc_deg: float, n_frames: int, width: int = 320, height: int = 180) -> Iterator[np.ndarray]:
    """The synthetic scene along an orbit of ``arc_deg``."""
    K = intrinsics(width, height)
    for pose in orbit_cam_from_world(n_frames, arc_deg=arc_deg):
        yield render_view(pose, K, width, height, supersample=1)[0]


def synthetic_turning(n_frames: int, width: int = 320, height: int = 180) -> Iterator[np.ndarray]:
    """The synthetic scene from one fixed point while the camera turns 40°, anti-aliased.

    Without anti-aliasing the renderer's shimmer moves texture detail from frame to frame the way
    no camera lens does, which reads as a little parallax (0.05-0.08 instead of 0.01).
    """
    K = intrinsics(width, height)
    centre = np.array([0.0, -0.2, -1.0])
    for yaw in np.radians(np.linspace(-20.0, 20.0, n_frames)):
        pose = look_at(centre, centre + np.array([np.sin(yaw), 0.15, np.cos(yaw)]), UP)
        yield render_view(pose, K, width, height, supersample=2)[0]


def captures(garden: list[np.ndarray], fps: float) -> list[tuple[str, str, float, Callable[[], Iterable[np.ndarray]]]]:
    """``(name, expected verdict, fps, frames maker)`` of every capture in the table (no garden ones without it)."""
    made: list[tuple[str, str, float, Callable[[], Iterable[np.ndarray]]]] = [
        ("garden", "good", fps, lambda: garden),
        ("garden, Gaussian blur σ=3 px", "poor", fps, lambda: gaussian_blur(garden)),
        ("garden, motion blur 21 px", "poor", fps, lambda: motion_blur(garden)),
        ("garden, sped up 8×", "poor", fps, lambda: sped_up(garden)),
        ("garden, still shot", "poor", fps, lambda: still(garden)),
        ("garden, turning in place 20°", "poor", fps, lambda: turning_in_place(garden)),
        ("garden, over-exposed (×2.5 +40)", "poor", fps, lambda: exposure(garden, 2.5, 40.0)),
        ("garden, under-exposed (×0.12)", "poor", fps, lambda: exposure(garden, 0.12)),
        ("synthetic orbit 150°, 60 frames", "good", 30.0, lambda: synthetic_orbit(150.0, 60)),
        ("synthetic orbit 360°, 120 frames", "good", 30.0, lambda: synthetic_orbit(360.0, 120)),
        ("synthetic turning in place 40°", "poor", 30.0, lambda: synthetic_turning(40)),
    ]
    return [c for c in made if garden or not c[0].startswith("garden")]


def _row(name: str, expected: str, report: CaptureReport, cpu_s: float) -> str:
    s, m, c, e = report.sharpness, report.motion, report.coverage, report.exposure
    parallax = "—" if m.parallax is None else f"{m.parallax:.2f}"
    return (
        f"| {name} | {report.frame_count} | {s.blurry_share:.2f} | {s.longest_blurry_s:.2f} | "
        f"{m.view_change_per_frame:.4f} | {m.turn_deg_per_frame:.2f} | {m.fast_share:.2f} | {m.total_view_change:.3f} | "
        f"{parallax} | "
        f"{c.arc_deg:.0f} | {'yes' if c.closes_loop else 'no'} | {e.overexposed_share:.2f} | "
        f"{e.underexposed_share:.2f} | {report.usable_frames} | {report.seconds:.2f} | {cpu_s:.2f} | {report.verdict} | "
        f"{expected} | "
        f"{'✓' if report.verdict == expected else '✗'} | {', '.join(report.flags) or '—'} |"
    )


def main() -> None:
    """Make the captures, check each one, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, default=None, help="write the variant videos here and keep them")
    args = parser.parse_args()
    if GARDEN_VIDEO.exists():
        fps, garden = probe_video(GARDEN_VIDEO).fps, _garden_frames()
    else:
        print(f"{GARDEN_VIDEO} is missing: only the synthetic captures are checked")
        fps, garden = 30.0, []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for k, (name, expected, rate, make) in enumerate(captures(garden, fps)):
            video = GARDEN_VIDEO if name == "garden" else folder / f"capture-{k:02d}.mp4"
            if video != GARDEN_VIDEO:
                encode_h264(video, make(), rate)
            cpu_started = time.process_time()
            report = check_capture(video)
            rows.append(_row(name, expected, report, time.process_time() - cpu_started))
    print(
        "| capture | frames | blurry share | longest blurry (s) | view change / frame | turn (°) / frame | fast share "
        "| total view change | parallax | arc (°) | loop | over | under | usable frames | seconds | CPU s | verdict | reference | "
        "match | flags |"
    )
    print("|" + "---|" * 20)
    print("\n".join(rows))
    print(f"load average (1, 5, 15 min) before the checks: {', '.join(f'{x:.2f}' for x in load_before)}")
    print(f"load average (1, 5, 15 min) after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
