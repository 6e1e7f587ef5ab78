"""Everything that touches pycolmap: features, matching, mapping, undistortion, reading the model.

pycolmap 4.2.1 API notes kept here so drift stays in one place: ``image.cam_from_world()`` is a
method; long calls take a ``CancellationToken``; ``incremental_mapping`` calls
``next_image_callback`` from its own thread after each registered image.

Long calls run on a helper thread while the calling thread keeps reporting progress, so
``on_progress`` (which raises :class:`shared.errors.Cancelled`) is honoured by cancelling the token.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from shared.errors import Cancelled, ErrorCode, StageError
from shared.options.sfm import SfmOptions
from shared.progress import ProgressFn, sub_progress

if TYPE_CHECKING:
    from pycolmap import CancellationToken

logger = logging.getLogger(__name__)

T = TypeVar("T")
_POLL_S = 0.25
_GLOBAL_BA_GROWTH = 1.4
_GLOBAL_BA_ITERATIONS = 30
_LOCAL_BA_ITERATIONS = 15


@dataclass(frozen=True)
class SparseModel:
    """An undistorted COLMAP reconstruction as plain arrays (COLMAP's world frame)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    image_names: list[str]  # registered images
    cam_from_world: np.ndarray  # [N, 3, 4], aligned with image_names
    points_xyz: np.ndarray  # [M, 3] float64
    points_rgb: np.ndarray  # [M, 3] uint8
    points_error: np.ndarray  # [M] float32, mean reprojection error in pixels
    track_point: np.ndarray  # [K] int32, row in points_xyz
    track_image: np.ndarray  # [K] int32, row in image_names
    mean_reprojection_error: float


@dataclass(frozen=True)
class ColmapRun:
    """What :func:`reconstruct` produced."""

    model_dir: Path  # the largest model, distorted camera
    registered: int
    fallback_used: bool
    seconds: dict[str, float]


def _configure_colmap_logging() -> None:
    """Let COLMAP print only errors unless this module logs at DEBUG (its solver warnings are routine)."""
    import pycolmap

    pycolmap.logging.minloglevel = 0 if logger.isEnabledFor(logging.DEBUG) else 2


def _run_cancellable(
    step: str,
    work: Callable[[CancellationToken], T],
    on_progress: ProgressFn,
    message: Callable[[], tuple[float, str]],
) -> T:
    """Run ``work(token)`` on a thread; poll ``on_progress`` meanwhile and cancel the token if it raises.

    Args:
        step: the step's name, for errors.
        work: the pycolmap call, given a fresh ``CancellationToken``.
        on_progress: the step's progress callback (may raise ``Cancelled``).
        message: returns the current ``(fraction, message)`` to report.

    Returns:
        What ``work`` returned.

    Raises:
        StageError: ``SFM_FAILED`` when COLMAP raises, ``OUT_OF_MEMORY`` when it runs out of memory;
            ``Cancelled`` when cancelled.
    """
    import pycolmap

    token = pycolmap.CancellationToken()
    result: dict[str, object] = {}

    def target() -> None:
        try:
            result["value"] = work(token)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target, name="pycolmap", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            fraction, text = message()
            on_progress(fraction, text)
            thread.join(_POLL_S)
    except BaseException:  # Cancelled, or anything else the callback raises: stop COLMAP before leaving
        token.cancel()
        thread.join()
        raise
    if token.is_cancelled:
        raise Cancelled()
    error = result.get("error")
    if isinstance(error, MemoryError):
        raise StageError(ErrorCode.OUT_OF_MEMORY, "COLMAP ran out of memory.") from error
    if isinstance(error, RuntimeError):  # pycolmap reports its C++ failures as RuntimeError
        raise StageError(ErrorCode.SFM_FAILED, f"COLMAP failed: {error}", details={"step": step}) from error
    if isinstance(error, BaseException):
        raise error
    return result["value"]  # type: ignore[return-value]


def _extract(database: Path, images_dir: Path, names: list[str], options: SfmOptions, on_progress: ProgressFn) -> None:
    import pycolmap

    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = options.camera_model
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = options.num_threads
    extraction.max_image_size = options.max_long_side
    extraction.sift.max_num_features = options.max_num_features
    started = time.monotonic()
    _run_cancellable(
        "features",
        lambda token: pycolmap.extract_features(
            database,
            images_dir,
            image_names=names,
            camera_mode=pycolmap.CameraMode.SINGLE,
            reader_options=reader,
            extraction_options=extraction,
            device=pycolmap.Device.auto,
            cancellation_token=token,
        ),
        on_progress,
        lambda: (_eta_fraction(started, 0.15 * len(names)), f"finding features in {len(names)} frames"),
    )


def _eta_fraction(started: float, expected_s: float) -> float:
    """A progress estimate that approaches (never reaches) 1 as time passes ``expected_s``."""
    elapsed = time.monotonic() - started
    return 1.0 - float(np.exp(-elapsed / max(expected_s, 1e-3)))


def _matching_options(options: SfmOptions):  # -> pycolmap.FeatureMatchingOptions
    import pycolmap

    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = options.num_threads
    return matching


def _verification_options(options: SfmOptions):  # -> pycolmap.TwoViewGeometryOptions
    """Two-view geometric verification with the stage's seed: its RANSAC would otherwise seed itself at random."""
    import pycolmap

    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = options.seed
    return verification


def _match(
    label: str,
    match: Callable[..., object],
    database: Path,
    pairing: object,
    options: SfmOptions,
    on_progress: ProgressFn,
    expected_s: float,
    message: str,
) -> None:
    """Run one pycolmap matcher (``match_sequential`` or ``match_image_pairs``), cancellable, with progress.

    Args:
        label: what the step is called in errors and logs.
        match: the pycolmap matching function.
        database: the COLMAP database.
        pairing: the matcher's pairing options.
        options: the stage options (matching settings).
        on_progress: progress and cancellation callback.
        expected_s: rough duration, for the progress estimate.
        message: the progress message.
    """
    import pycolmap

    started = time.monotonic()
    _run_cancellable(
        label,
        lambda token: match(
            database,
            matching_options=_matching_options(options),
            pairing_options=pairing,
            verification_options=_verification_options(options),
            device=pycolmap.Device.auto,
            cancellation_token=token,
        ),
        on_progress,
        lambda: (_eta_fraction(started, expected_s), message),
    )


def _match_sequential(database: Path, n_images: int, options: SfmOptions, on_progress: ProgressFn) -> None:
    import pycolmap

    pairing = pycolmap.SequentialPairingOptions()
    pairing.overlap = options.sequential_overlap
    pairing.quadratic_overlap = True
    pairing.loop_detection = False
    pairing.num_threads = options.num_threads
    _match(
        "matching",
        pycolmap.match_sequential,
        database,
        pairing,
        options,
        on_progress,
        0.05 * n_images * options.sequential_overlap,
        "matching neighbouring frames",
    )


def _match_subset_exhaustive(
    database: Path, names: list[str], work_dir: Path, options: SfmOptions, on_progress: ProgressFn
) -> int:
    """Match every pair among evenly spaced frames (at most ``options.fallback_max_frames``)."""
    import pycolmap

    step = max(1, int(np.ceil(len(names) / options.fallback_max_frames)))
    subset = names[::step]
    pairs_file = work_dir / "fallback_pairs.txt"
    pairs_file.write_text("".join(f"{a} {b}\n" for a, b in itertools.combinations(subset, 2)))
    pairing = pycolmap.ImportedPairingOptions()
    pairing.match_list_path = pairs_file
    n_pairs = len(subset) * (len(subset) - 1) // 2
    _match(
        "fallback matching",
        pycolmap.match_image_pairs,
        database,
        pairing,
        options,
        on_progress,
        0.01 * n_pairs,
        f"matching all pairs of {len(subset)} frames",
    )
    return len(subset)


def _map(
    database: Path, images_dir: Path, output_dir: Path, n_images: int, options: SfmOptions, on_progress: ProgressFn
):  # -> pycolmap.Reconstruction | None
    """Incremental mapping; returns the model with the most registered images, or ``None``."""
    import pycolmap

    pycolmap.set_random_seed(options.seed)
    mapping = pycolmap.IncrementalPipelineOptions()
    mapping.random_seed = options.seed
    mapping.num_threads = options.num_threads
    mapping.multiple_models = True
    mapping.min_model_size = 3
    mapping.extract_colors = True
    # Global bundle adjustment after each 40 % growth of the model instead of COLMAP's 10 %, and capped
    # solver iterations per adjustment: on the garden video (preview) this cut mapping CPU time from
    # 62 s to 39 s with the same 60/60 frames registered and the same 0.24 px reprojection error.
    mapping.ba_global_frames_ratio = _GLOBAL_BA_GROWTH
    mapping.ba_global_points_ratio = _GLOBAL_BA_GROWTH
    mapping.ba_global_max_num_iterations = _GLOBAL_BA_ITERATIONS
    mapping.ba_local_max_num_iterations = _LOCAL_BA_ITERATIONS
    output_dir.mkdir(parents=True, exist_ok=True)
    registered = [0]

    def next_image() -> None:
        registered[0] += 1

    models = _run_cancellable(
        "mapping",
        lambda token: pycolmap.incremental_mapping(
            database,
            images_dir,
            output_dir,
            options=mapping,
            next_image_callback=next_image,
            cancellation_token=token,
        ),
        on_progress,
        lambda: (min(registered[0] / max(n_images, 1), 1.0), f"registered {registered[0]} of {n_images} frames"),
    )
    if not models:
        return None
    return max(models.values(), key=lambda rec: (rec.num_reg_images(), rec.num_points3D()))


def reconstruct(
    images_dir: Path, names: list[str], work_dir: Path, options: SfmOptions, on_progress: ProgressFn
) -> ColmapRun:
    """Features, sequential matching and incremental mapping; exhaustive matching on a subset if needed.

    Args:
        images_dir: the selected frames.
        names: their file names, in time order (the order sequential matching relies on).
        work_dir: scratch directory for the database and models (created).
        options: the stage options (seed, features, overlap, thresholds, threads).
        on_progress: progress and cancellation callback.

    Returns:
        The largest model's directory and counts.

    Raises:
        StageError: ``TOO_FEW_FRAMES_REGISTERED`` with the counts, or ``SFM_FAILED``.
    """
    _configure_colmap_logging()
    work_dir.mkdir(parents=True, exist_ok=True)
    database = work_dir / "database.db"
    seconds: dict[str, float] = {}
    started = time.monotonic()
    _extract(database, images_dir, names, options, sub_progress(on_progress, 0.0, 0.3))
    seconds["features"] = time.monotonic() - started

    started = time.monotonic()
    _match_sequential(database, len(names), options, sub_progress(on_progress, 0.3, 0.5))
    seconds["matching"] = time.monotonic() - started

    started = time.monotonic()
    best = _map(database, images_dir, work_dir / "models", len(names), options, sub_progress(on_progress, 0.5, 0.8))
    seconds["mapping"] = time.monotonic() - started
    registered = best.num_reg_images() if best is not None else 0
    needed = int(np.ceil(options.min_registered_fraction * len(names)))

    fallback_used = False
    if registered < needed:
        logger.info(
            "sequential matching registered %d of %d frames; matching a subset exhaustively", registered, len(names)
        )
        fallback_used = True
        started = time.monotonic()
        _match_subset_exhaustive(database, names, work_dir, options, sub_progress(on_progress, 0.8, 0.85))
        seconds["fallback_matching"] = time.monotonic() - started
        started = time.monotonic()
        retry = _map(
            database,
            images_dir,
            work_dir / "models_fallback",
            len(names),
            options,
            sub_progress(on_progress, 0.85, 1.0),
        )
        seconds["fallback_mapping"] = time.monotonic() - started
        if retry is not None and retry.num_reg_images() > registered:
            best, registered = retry, retry.num_reg_images()

    if best is None or registered < needed:
        raise StageError(
            ErrorCode.TOO_FEW_FRAMES_REGISTERED,
            f"COLMAP registered {registered} of {len(names)} frames (at least {needed} needed): the camera barely "
            "moved, turned on the spot, or the frames are blurred or textureless. Walk slowly around the object, "
            "keep it in view and avoid fast motion.",
            details={
                "frames_selected": len(names),
                "frames_registered": registered,
                "frames_needed": needed,
                "fallback_used": fallback_used,
            },
        )
    model_dir = work_dir / "largest"
    model_dir.mkdir(parents=True, exist_ok=True)
    best.write(model_dir)
    on_progress(1.0, f"registered {registered} of {len(names)} frames")
    return ColmapRun(model_dir=model_dir, registered=registered, fallback_used=fallback_used, seconds=seconds)


def undistort(
    model_dir: Path, images_dir: Path, out_dir: Path, options: SfmOptions, on_progress: ProgressFn
) -> SparseModel:
    """Undistort the registered frames to one pinhole camera and read the model back as arrays.

    Args:
        model_dir: the distorted model from :func:`reconstruct`.
        images_dir: the distorted frames.
        out_dir: receives ``images/`` (JPEG, ``options.jpeg_quality``) and ``sparse/`` (the undistorted
            model, COLMAP's world frame).
        options: the stage options.
        on_progress: progress and cancellation callback.

    Returns:
        The undistorted model.
    """
    import pycolmap

    undistort_options = pycolmap.UndistortCameraOptions()
    started = time.monotonic()
    _run_cancellable(
        "undistortion",
        lambda token: pycolmap.undistort_images(
            out_dir,
            model_dir,
            images_dir,
            output_type="COLMAP",
            undistort_options=undistort_options,
            jpeg_quality=options.jpeg_quality,
            num_threads=options.num_threads,
            cancellation_token=token,
        ),
        on_progress,
        lambda: (_eta_fraction(started, 5.0), "undistorting frames"),
    )
    return read_model(out_dir / "sparse")


def read_model(model_dir: Path) -> SparseModel:
    """Read a COLMAP model with one pinhole camera into arrays.

    Raises:
        StageError: ``SFM_FAILED`` when the model has no registered image or not exactly one pinhole camera.
    """
    import pycolmap

    rec = pycolmap.Reconstruction(model_dir)
    if rec.num_cameras() != 1 or rec.num_reg_images() == 0:
        raise StageError(
            ErrorCode.SFM_FAILED,
            f"The reconstruction has {rec.num_cameras()} cameras and {rec.num_reg_images()} registered frames; "
            "expected one camera and some frames.",
        )
    camera = next(iter(rec.cameras.values()))
    if camera.model.name not in ("PINHOLE", "SIMPLE_PINHOLE"):
        raise StageError(ErrorCode.SFM_FAILED, f"Undistortion left a {camera.model.name} camera, not a pinhole one.")
    fx, fy, cx, cy = (
        (camera.params[0], camera.params[0], camera.params[1], camera.params[2])
        if camera.model.name == "SIMPLE_PINHOLE"
        else tuple(camera.params[:4])
    )
    image_ids = sorted(rec.reg_image_ids(), key=lambda i: rec.images[i].name)
    row_of_image = {image_id: row for row, image_id in enumerate(image_ids)}
    names = [rec.images[i].name for i in image_ids]
    cam_from_world = np.stack([rec.images[i].cam_from_world().matrix() for i in image_ids])  # [N, 3, 4]

    point_ids = sorted(rec.point3D_ids())
    xyz = np.array([rec.points3D[p].xyz for p in point_ids], dtype=np.float64).reshape(-1, 3)
    rgb = np.array([rec.points3D[p].color for p in point_ids], dtype=np.uint8).reshape(-1, 3)
    error = np.array([rec.points3D[p].error for p in point_ids], dtype=np.float32)
    track_point: list[int] = []
    track_image: list[int] = []
    for row, p in enumerate(point_ids):
        for element in rec.points3D[p].track.elements:
            if element.image_id in row_of_image:
                track_point.append(row)
                track_image.append(row_of_image[element.image_id])
    return SparseModel(
        fx=float(fx),
        fy=float(fy),
        cx=float(cx),
        cy=float(cy),
        width=int(camera.width),
        height=int(camera.height),
        image_names=names,
        cam_from_world=cam_from_world,
        points_xyz=xyz,
        points_rgb=rgb,
        points_error=error,
        track_point=np.asarray(track_point, dtype=np.int32),
        track_image=np.asarray(track_image, dtype=np.int32),
        mean_reprojection_error=float(rec.compute_mean_reprojection_error()),
    )
