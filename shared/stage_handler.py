"""What a worker kind is and what its stage handler gets and returns; the training stages' handler.

A :class:`WorkerSpec` names a stage, the inputs its worker fetches and its :data:`StageHandler`. The
consumer loop (:mod:`shared.worker_loop`) calls the handler once per attempt with a :class:`StageJob`
and uploads the files of the :class:`StageOutput` it returns. The training stages (``gs``, ``nerf``)
share one worker kind, :func:`training_spec`, around one handler, :func:`training_handler`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shared.artifacts import REPORT_FILE, SCENE_ARCHIVE, output_files
from shared.capture.report import CaptureReport
from shared.device import device_class
from shared.errors import ErrorCode, StageError
from shared.messages import StageName, StageRequest
from shared.options import DeviceClass, SplatOptions, StageOptions, TensorfOptions
from shared.progress import ProgressFn
from shared.settings import Device
from shared.training_metrics import TrainingMetrics
from shared.worker_api import Lease


@dataclass(frozen=True)
class StageJob:
    """What a stage handler gets for one attempt.

    Attributes:
        request: the message.
        lease: the server's grant (``attempt``, resolved ``options``).
        options: ``lease.options`` validated as the stage's options model.
        inputs: downloaded input files by input name (``input``, ``sfm.tar``).
        work_dir: an empty scratch folder for the handler.
        out_dir: the (absent) folder the stage function writes its outputs to.
        on_progress: progress callback and cancellation point.
        on_capture: publishes the capture check on the job (sent with the next heartbeat, at once).
    """

    request: StageRequest
    lease: Lease
    options: StageOptions
    inputs: dict[str, Path]
    work_dir: Path
    out_dir: Path
    on_progress: ProgressFn
    on_capture: Callable[[CaptureReport], None] = field(default=lambda report: None)


@dataclass(frozen=True)
class StageOutput:
    """What a stage handler returns: files to upload by artifact name, and the stage's metrics."""

    artifacts: dict[str, Path]
    metrics: dict[str, Any] = field(default_factory=dict)


#: Maps one attempt's inputs to the pure stage function; raises StageError (or anything) on failure.
StageHandler = Callable[[StageJob], StageOutput]


@dataclass(frozen=True)
class WorkerSpec:
    """A worker kind: its stage, the inputs it fetches, and its handler."""

    stage: StageName
    inputs: tuple[str, ...]
    handler: StageHandler
    #: What the stage trains on (training workers); announced to the server when the worker starts.
    device_class: Callable[[], DeviceClass] | None = None


def collect_outputs(out_dir: Path, files: dict[str, str]) -> StageOutput:
    """The :class:`StageOutput` of a stage's output folder: metrics from its ``report.json``.

    Args:
        out_dir: the folder the stage function wrote.
        files: artifact name → file name in ``out_dir`` (:func:`shared.artifacts.output_files`).

    Raises:
        StageError: ``INTERNAL`` when a promised file is missing (a bug in the stage).
    """
    artifacts = {name: out_dir / file_name for name, file_name in files.items()}
    missing = sorted(name for name, path in artifacts.items() if not path.is_file())
    if missing:
        raise StageError(ErrorCode.INTERNAL, f"the stage finished without writing {', '.join(missing)}")
    report = out_dir / REPORT_FILE
    metrics = json.loads(report.read_text()) if report.is_file() else {}
    return StageOutput(artifacts=artifacts, metrics=metrics)


class TrainingResult(Protocol):
    """What a training stage function returns: its output folder and its metrics."""

    @property
    def out_dir(self) -> Path: ...  # pragma: no cover - a protocol

    @property
    def metrics(self) -> TrainingMetrics: ...  # pragma: no cover - a protocol


#: A training stage function: ``(scene_dir, out_dir, options, on_progress) -> result``.
TrainStageFn = Callable[[Path, Path, Any, ProgressFn], TrainingResult]


def training_spec(stage: StageName, load_train: Callable[[], TrainStageFn], device: Device = "auto") -> WorkerSpec:
    """A training worker kind (``gs``, ``nerf``): input ``sfm.tar``, the stage's artifacts, its device class.

    Args:
        stage: the training stage; its artifacts are :func:`shared.artifacts.output_files` of it.
        load_train: returns the stage function (see :func:`training_handler`).
        device: the worker's device setting; it replaces an ``auto`` device option, and the worker
            announces the class it trains on (:func:`shared.device.device_class`, which imports torch
            when called).
    """
    return WorkerSpec(
        stage=stage,
        inputs=(SCENE_ARCHIVE,),
        handler=training_handler(load_train, output_files(stage), device),
        device_class=functools.partial(device_class, device),
    )


def training_handler(
    load_train: Callable[[], Callable[[Path, Path, Any, ProgressFn], object]],
    files: dict[str, str],
    device: Device = "auto",
) -> StageHandler:
    """The handler of a training stage (``gs``, ``nerf``): unpack ``sfm.tar``, train, collect the outputs.

    Args:
        load_train: returns the stage function (its result is not read here); called when a job runs,
            so that the worker imports torch (and gsplat) only where a stage runs.
        files: artifact name → file name in the stage's output folder, as for :func:`collect_outputs`.
        device: the worker's device setting; it replaces an ``auto`` device option.

    Returns:
        A :data:`StageHandler` whose job fetches the input ``sfm.tar``.
    """

    def handle(job: StageJob) -> StageOutput:
        from shared.scene_archive import unpack_scene

        options = job.options
        assert isinstance(options, SplatOptions | TensorfOptions)
        if device != "auto" and options.device == "auto":
            options = options.model_copy(update={"device": device})
        scene_dir = job.work_dir / "scene"
        unpack_scene(job.inputs[SCENE_ARCHIVE], scene_dir)
        load_train()(scene_dir, job.out_dir, options, job.on_progress)
        return collect_outputs(job.out_dir, files)

    return handle
