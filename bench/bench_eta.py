"""How far off the ETA is: three real jobs on the local stack, the estimate at 10 % and 50 % of each
stage against the time that was actually left.

Usage::

    nice -n 19 python bench/bench_eta.py [--garden VIDEO] [--out DIR]

Runs the local stack (create_app, SecantusDB, the in-process broker, the sfm and gs workers on the
CPU), then three jobs one after the other at small settings (a minute or two each on two cores): a
synthetic orbit with no history (the defaults), then the garden clip twice with the history the
earlier jobs left (another video, frame count and image size; then 5/3 of the training steps: the
scaling). Prints a Markdown table per
job and the load (``uptime``) before and after; docs/eta.md records a run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.*

from shared.messages import StageName
from shared.synthetic_scene import render_capture
from tests.e2e.stack import tiny_options
from tests.fixtures.data_files import GARDEN_VIDEO
from vid2scene.local import LocalStack

CHECKPOINTS = (0.1, 0.5)
STAGES: tuple[StageName, ...] = ("sfm", "gs")


def _jobs(videos: Path, garden: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    synthetic = render_capture(videos / "a", width=320, height=180, n_frames=60, fps=24.0, seed=1).video
    sfm = {"target_frames": 40, "max_long_side": 480, "max_num_features": 2048}
    gs = tiny_options(("gs",))["gs"]  # a small flythrough: the fixed part stays small
    return [
        (
            "A: synthetic orbit 60 frames 320×180, sfm 40 frames, gs 400 steps at 160 px (no history)",
            synthetic,
            {"sfm": {**sfm, "max_long_side": 320}, "gs": {**gs, "iterations": 400, "max_long_side": 160}},
        ),
        (
            "B: garden clip, sfm 40 frames at 480 px, gs 600 steps at 320 px",
            garden,
            {"sfm": sfm, "gs": {**gs, "iterations": 600, "max_long_side": 320}},
        ),
        (
            "C: garden clip as B, gs 1000 steps",
            garden,
            {"sfm": sfm, "gs": {**gs, "iterations": 1000, "max_long_side": 320}},
        ),
    ]


def _follow(http: httpx.Client, job_id: str) -> list[tuple[datetime, dict[str, Any]]]:
    samples = []
    while True:
        job = http.get(f"/v1/jobs/{job_id}").json()
        samples.append((datetime.now(UTC), job))
        if job["status"] not in ("queued", "running"):
            return samples
        time.sleep(0.5)


def _report(label: str, samples: list[tuple[datetime, dict[str, Any]]]) -> list[str]:
    final = samples[-1][1]
    ended = datetime.fromisoformat(final["finished_at"] or final["updated_at"])
    submitted = samples[0]
    lines = [f"**{label}** — {final['status']}", "", "| stage | at | predicted left | actual left | error |"]
    lines.append("|---|---|---|---|---|")
    for name in STAGES:
        stage_end = datetime.fromisoformat(final["stages"][name]["finished_at"])
        stage_start = datetime.fromisoformat(final["stages"][name]["started_at"])
        took = (stage_end - stage_start).total_seconds()
        prior = submitted[1]["stages"][name]
        lines.append(
            f"| {name} | before start ({prior['eta_basis']}) | {prior['eta_seconds']:.0f} s (duration) "
            f"| {took:.0f} s | {_error(prior['eta_seconds'], took)} |"
        )
        for checkpoint in CHECKPOINTS:
            hit = next(
                (
                    (t, j)
                    for t, j in samples
                    if j["stages"][name]["status"] == "running" and j["stages"][name]["progress"] >= checkpoint
                ),
                None,
            )
            if hit is None:
                lines.append(f"| {name} | {checkpoint:.0%} | not sampled | | |")
                continue
            t, job = hit
            stage = job["stages"][name]
            actual = (stage_end - t).total_seconds()
            lines.append(
                f"| {name} | {stage['progress']:.0%} ({stage['eta_basis']}) | {stage['eta_seconds']:.0f} s "
                f"| {actual:.0f} s | {_error(stage['eta_seconds'], actual)} |"
            )
            job_actual = (ended - t).total_seconds()
            lines.append(
                f"| job | {name} {stage['progress']:.0%} | {job['eta_seconds']:.0f} s | {job_actual:.0f} s "
                f"| {_error(job['eta_seconds'], job_actual)} |"
            )
    lines.append("")
    return lines


def _error(predicted: float, actual: float) -> str:
    if actual <= 0:
        return "n/a"
    return f"{(predicted - actual) / actual:+.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--garden", type=Path, default=GARDEN_VIDEO, help="the garden test clip (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="keep the stack's data and the raw samples here")
    args = parser.parse_args()
    base = args.out or Path(tempfile.mkdtemp(prefix="bench-eta-"))
    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    with (
        LocalStack(base / "stack", stages=STAGES, device="cpu", mongo_url=None) as stack,
        httpx.Client(base_url=stack.url, timeout=60) as http,
    ):
        for label, video, options in _jobs(base / "videos", args.garden):
            with video.open("rb") as fh:
                response = http.post(
                    "/v1/jobs",
                    files={"video": (video.name, fh, "video/mp4")},
                    data={"methods": "gs", "preset": "preview", "options": json.dumps(options)},
                )
            response.raise_for_status()
            samples = _follow(http, response.json()["id"])
            raw = [{"t": t.isoformat(), "job": job} for t, job in samples]
            (base / f"samples-{label[0]}.json").write_text(json.dumps(raw))
            print("\n".join(_report(label, samples)), flush=True)
    print("load after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
