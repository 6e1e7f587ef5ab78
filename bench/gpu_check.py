"""One-shot check of every CUDA path on one GPU, in one command of a few minutes, printing one table.

What it runs, in order (each row of the table says passed / failed with its figures; a failure does not stop the rest):

1. ``gsplat``: import and load (compile on first use) its CUDA extension; the seconds it took.
2. Rasterizers: the same random scene (5000 Gaussians, SH degree 1, 256×192) rendered by gsplat on CUDA and by our CPU
   rasterizer (the compiled one behind ``backend="cpu"``); largest pixel difference and the cosine similarity of the
   gradients of means, quats, scales, opacities and SH coefficients.
3. Gaussian splats on the garden scene, ``train_splats`` on CUDA for ``--steps`` steps with ``strategy=default`` and
   with ``strategy=mcmc`` (gsplat's MCMC recipe: initial opacity 0.5, scale × 0.1): held-out PSNR, Gaussians, seconds.
4. TensoRF on the same scene on CUDA for ``--steps`` steps: held-out PSNR and seconds.

The scene is an SfM scene directory (``--scene``), or one made here from ``--video`` with the ``preview`` SfM preset
(needs pycolmap; on a machine without it, make the scene elsewhere with ``vid2scene sfm VIDEO -o DIR`` and pass it).

Usage:
    python bench/gpu_check.py [--scene DIR | --video garden-orbit-480p.mp4] [--steps 300] [--long-side 640]

On a lent GPU machine whose Python lacks the project's pure-Python dependencies (pydantic, pydantic-settings, av,
gsplat 1.5.3, packaging), carry them as wheels and install them into a private folder first, then run this script with
that folder and the repository on ``PYTHONPATH``. Exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import functools
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.data_files import GARDEN_VIDEO  # noqa: E402 - after the repository is on sys.path


@dataclass
class Row:
    """One line of the result table."""

    check: str
    passed: bool
    figures: str
    seconds: float


def _timed(name: str, rows: list[Row], check: Callable[[], tuple[bool, str]]) -> None:
    """Run ``check`` (returning ``(passed, figures)``), record a row, never raise."""
    started = time.perf_counter()
    try:
        passed, figures = check()
    except Exception as exc:  # a check that breaks is a failed row, and the next check still runs
        traceback.print_exc()
        passed, figures = False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
    rows.append(Row(name, passed, figures, time.perf_counter() - started))
    print(f"[{'ok' if passed else 'FAIL'}] {name}: {figures}", flush=True)


def check_gsplat_loads() -> tuple[bool, str]:
    """Import gsplat and load its CUDA extension (compiling it on first use)."""
    import gsplat
    from gsplat.cuda._backend import _C

    return _C is not None, f"gsplat {gsplat.__version__}, CUDA extension {'loaded' if _C is not None else 'MISSING'}"


def check_rasterizers_agree(n: int = 5000, width: int = 256, height: int = 192) -> tuple[bool, str]:
    """gsplat on CUDA against our CPU rasterizer: pixels and gradients of every parameter."""
    import torch

    from bench.bench_rasterizer import make_scene  # the benchmark's random scene
    from gs_worker.rasterize import Backend, rasterize

    params, viewmats, Ks = make_scene(n, width, height)
    results = {}
    runs: tuple[tuple[Backend, str], ...] = (("gsplat", "cuda"), ("cpu", "cpu"))
    for backend, device in runs:
        means, quats, scales, opacities, sh = leaves = [p.detach().clone().to(device).requires_grad_() for p in params]
        colors, alphas, _ = rasterize(
            means,
            quats,
            scales,
            opacities,
            sh,
            viewmats.to(device),
            Ks.to(device),
            width,
            height,
            sh_degree=1,
            backend=backend,
        )
        grads = torch.autograd.grad(colors.sum() + alphas.sum(), leaves)
        results[backend] = (colors.detach().cpu(), [grad.detach().cpu() for grad in grads])
    pixel_diff = float((results["gsplat"][0] - results["cpu"][0]).abs().max())
    names = ("means", "quats", "scales", "opacities", "sh")
    cosines = {
        name: float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))
        for name, a, b in zip(names, results["gsplat"][1], results["cpu"][1], strict=True)
    }
    passed = pixel_diff <= 1e-3 and min(cosines.values()) >= 0.999
    figures = f"max pixel diff {pixel_diff:.1e}; grad cosine " + ", ".join(f"{k} {v:.5f}" for k, v in cosines.items())
    return passed, figures


def check_splats(scene: Path, strategy: str, steps: int, long_side: int) -> tuple[bool, str]:
    """``train_splats`` on CUDA with ``strategy``: held-out PSNR must rise above the untrained start."""
    from gs_worker.pipeline import train_splats
    from shared.options.gs import SplatOptions

    options = SplatOptions.from_preset(
        "standard",
        device="cuda",
        strategy=strategy,
        iterations=steps,
        max_long_side=long_side,
        refine_start_iter=min(100, steps // 3),
        refine_stop_iter=max(min(100, steps // 3), steps - 50),
        refine_every=50,
        sh_degree_interval=max(1, steps // 4),
        flythrough_seconds=2.0,
        flythrough_fps=12,
    )
    with tempfile.TemporaryDirectory() as out:
        metrics = train_splats(scene, Path(out) / "gs", options).metrics
    passed = metrics.heldout_psnr > metrics.initial_psnr + 3.0 and metrics.backend == "gsplat"
    return passed, (
        f"held-out PSNR {metrics.initial_psnr:.2f} → {metrics.heldout_psnr:.2f} dB, SSIM {metrics.heldout_ssim:.3f}, "
        f"{metrics.initial_gaussian_count} → {metrics.gaussian_count} Gaussians, train {metrics.train_seconds:.1f} s "
        f"on {metrics.device} ({metrics.width}×{metrics.height})"
    )


def check_tensorf(scene: Path, steps: int, long_side: int) -> tuple[bool, str]:
    """``train_tensorf`` on CUDA: held-out PSNR must rise above the untrained start."""
    from nerf_worker.pipeline import train_tensorf
    from shared.options.nerf import TensorfOptions

    options = TensorfOptions.from_preset(
        "standard",
        device="cuda",
        iterations=steps,
        max_long_side=long_side,
        flythrough_seconds=2.0,
        flythrough_fps=12,
    )
    with tempfile.TemporaryDirectory() as out:
        metrics = train_tensorf(scene, Path(out) / "nerf", options).metrics
    passed = metrics.heldout_psnr > metrics.initial_psnr + 3.0
    return (
        passed,
        f"held-out PSNR {metrics.initial_psnr:.2f} → {metrics.heldout_psnr:.2f} dB, "
        f"train {metrics.train_seconds} s on {metrics.device}",
    )


def make_scene(video: Path, folder: Path) -> Path:
    """SfM (``preview`` preset) of ``video`` into ``folder``; returns the scene directory."""
    from sfm_worker.pipeline import run_sfm
    from shared.options.sfm import SfmOptions

    run_sfm(video, folder, SfmOptions.from_preset("preview"))
    return folder


def main() -> int:
    """Run every check and print the table; exit status 0 when all passed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", type=Path, default=None, help="an SfM scene directory (default: SfM of --video)")
    parser.add_argument(
        "--video", type=Path, default=GARDEN_VIDEO, help="video to reconstruct when --scene is not given"
    )
    parser.add_argument("--steps", type=int, default=300, help="training steps of each training check")
    parser.add_argument("--long-side", type=int, default=640, help="training image long side, pixels")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device is visible to torch; nothing to check", file=sys.stderr)
        return 1
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}", flush=True)
    rows: list[Row] = []
    _timed("gsplat CUDA extension loads", rows, check_gsplat_loads)
    _timed("gsplat vs CPU rasterizer (5000 G, 256×192)", rows, check_rasterizers_agree)
    with tempfile.TemporaryDirectory() as tmp:
        scene = args.scene
        if scene is None:
            started = time.perf_counter()
            scene = make_scene(args.video, Path(tmp) / "scene")
            print(f"SfM of {args.video.name}: {time.perf_counter() - started:.1f} s", flush=True)
        for strategy in ("default", "mcmc"):
            _timed(
                f"splats, {strategy}, {args.steps} steps",
                rows,
                functools.partial(check_splats, scene, strategy, args.steps, args.long_side),
            )
        _timed(f"TensoRF, {args.steps} steps", rows, lambda: check_tensorf(scene, args.steps, args.long_side))

    print()
    print("| check | result | figures | seconds |")
    print("|---|---|---|---:|")
    for row in rows:
        print(f"| {row.check} | {'passed' if row.passed else 'FAILED'} | {row.figures} | {row.seconds:.1f} |")
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
