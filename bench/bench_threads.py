"""Paired wall times of Gaussian-splat training steps with torch's default threads and with ours (a benchmark).

Each configuration runs in its own process (the OpenMP wait policy is read once, when torch loads), alternating
``default → ours → one thread`` for ``--rounds`` rounds so that a change in the machine's load hits all of them:

- ``default``: torch as it comes — ``OMP_WAIT_POLICY`` unset (OpenMP threads spin while they wait), as many threads
  as torch picks;
- ``ours``: :func:`shared.cpu_threads.configure_cpu_threads` — passive waits, one thread per usable CPU (what every
  vid2scene entry point does);
- ``one thread``: passive waits, one thread.

Each process trains ``--steps`` steps on the project's synthetic scene (``--size``, default 320×180) after 5 warm-up
steps; the table gives the median wall and CPU seconds per step and the ratio to ``ours``. Usage:

    python bench/bench_threads.py [--steps 40] [--rounds 3] [--size 320x180]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODES = ("default", "ours", "one thread")
_CLEARED = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "VID2SCENE_THREADS")


def child(mode: str, scene: Path, steps: int) -> None:
    """Train ``steps`` steps in this process configured as ``mode``; print ``{wall, cpu, threads}`` per step as JSON."""
    if mode != "default":
        from shared.cpu_threads import configure_cpu_threads

        configure_cpu_threads(1 if mode == "one thread" else None)
    import time

    import torch

    from gs_worker.init import init_splats
    from gs_worker.model import create_params
    from gs_worker.train import train
    from shared.options.gs import SplatOptions
    from shared.scene_loader import load_scene

    data = load_scene(scene, 10_000)
    options = SplatOptions.from_preset("preview", iterations=5 + steps, strategy="none", sh_degree=1)
    params = create_params(init_splats(data.points_xyz, data.points_rgb, sh_degree=1), torch.device("cpu"))
    marks: list[tuple[float, float]] = []

    def on_progress(fraction: float, _message: str) -> None:
        step = round(fraction * options.iterations)
        if step in (5, options.iterations):
            marks.append((time.perf_counter(), time.process_time()))

    train(params, data, options, torch.device("cpu"), on_progress=on_progress)
    (w0, c0), (w1, c1) = marks[0], marks[-1]
    print(json.dumps({"wall": (w1 - w0) / steps, "cpu": (c1 - c0) / steps, "threads": torch.get_num_threads()}))


def run_child(mode: str, scene: Path, steps: int) -> dict[str, float]:
    """One measurement of ``mode`` in a fresh process."""
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--scene", str(scene), "--steps", str(steps)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Write the scene, run the paired rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--scene", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.scene, args.steps)
        return

    from shared.synthetic_scene import write_ground_truth_scene

    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        scene = Path(tmp) / "scene"
        write_ground_truth_scene(scene, width=width, height=height, n_frames=24, seed=0, backdrop_points=1000)
        results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
        for _ in range(args.rounds):
            for mode in MODES:
                results[mode].append(run_child(mode, scene, args.steps))
    load = os.getloadavg()
    print(
        f"Gaussian-splat training steps, {width}×{height}, {args.steps} steps × {args.rounds} paired rounds; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end"
    )
    print()
    print("| configuration | torch threads | wall s/step (median) | CPU s/step | wall vs ours |")
    print("|---|---:|---:|---:|---:|")
    ours = statistics.median(r["wall"] for r in results["ours"])
    for mode in MODES:
        wall = statistics.median(r["wall"] for r in results[mode])
        cpu = statistics.median(r["cpu"] for r in results[mode])
        threads = int(results[mode][0]["threads"])
        print(f"| {mode} | {threads} | {wall:.3f} | {cpu:.3f} | {wall / ours:.2f}× |")


if __name__ == "__main__":
    main()
