"""``vid2scene train-nerf SCENE_DIR --out DIR``: train TensoRF on a scene directory, with a progress bar."""

from __future__ import annotations

import argparse

from shared.stage_cli import OptionFlag, TrainingCommand, add_training_command

TRAIN_NERF = TrainingCommand(
    name="train-nerf",
    stage="nerf",
    train="nerf_worker.pipeline:train_tensorf",
    help="train a TensoRF radiance field on a scene directory",
    description=(
        "Train TensoRF (VM decomposition) with SfM depth supervision on SCENE_DIR and write "
        "flythrough-nerf.mp4, tensorf.pt and report.json into DIR."
    ),
    flags=(OptionFlag("--depth-weight", "depth_weight", float, "W", "SfM depth loss weight; 0 turns it off"),),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train-nerf`` sub-command (:func:`shared.stage_cli.add_training_command`)."""
    add_training_command(subparsers, TRAIN_NERF)
