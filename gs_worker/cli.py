"""``vid2scene train-gs SCENE_DIR --out DIR``: train Gaussian splats on a scene, with a progress bar."""

from __future__ import annotations

import argparse

from shared.stage_cli import TrainingCommand, add_training_command

TRAIN_GS = TrainingCommand(
    name="train-gs",
    stage="gs",
    train="gs_worker.pipeline:train_splats",
    help="train Gaussian splats on a scene directory: every splat format, a viewer page, a flythrough",
    description=(
        "Train 3D Gaussians on the posed frames of SCENE_DIR (written by `vid2scene sfm`) and write "
        "scene.ply, scene.splat, scene.spz, scene.compressed.ply, scene.html, flythrough-gs.mp4 and "
        "report.json into DIR."
    ),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train-gs`` sub-command (:func:`shared.stage_cli.add_training_command`)."""
    add_training_command(subparsers, TRAIN_GS)
