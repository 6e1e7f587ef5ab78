"""The structure-from-motion stage: a video in, a posed scene directory out.

:func:`run_sfm` is pure (paths and options in, a typed result out; no environment, broker or
database). It writes into a temporary directory beside ``out_dir`` that is renamed into place only
when everything is written (:func:`shared.output_dir.staged_output_dir`), so a failed or cancelled
run leaves nothing behind and a repeated run replaces the previous result.

Output layout (see ``docs/sfm.md``)::

    out_dir/
      images/frame_XXXXX.jpg   undistorted registered frames (XXXXX = index of the frame in the video)
      scene.json               shared.manifest.SceneManifest, normalised world
      points.ply               sparse points, normalised world
      tracks.npz               point_index, frame_index (int32), point_error (float32, per point)
      sparse/                  the undistorted COLMAP model, in COLMAP's frame (see world_from_colmap)
      report.json              SfmResult.metrics() (counts, reprojection error, seconds_<step>), plus
                               "video" (the probe), "options" and "capture" (the capture check)

The first step is the capture check (``shared.capture``, seconds): its report goes to
``on_capture`` as soon as it is known, into ``report.json``, and, with
``options.on_poor_capture == "fail"``, a ``poor`` verdict stops the stage with ``POOR_CAPTURE``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sfm_worker import colmap_io
from sfm_worker.frames import FrameSelection, select_frames, target_count
from sfm_worker.normalize import SimilarityTransform, normalizing_similarity
from shared.artifacts import REPORT_FILE
from shared.capture.report import CaptureReport
from shared.errors import ErrorCode, StageError
from shared.manifest import (
    IMAGES_DIR,
    POINTS_FILE,
    SCENE_FILE,
    SPARSE_DIR,
    TRACKS_FILE,
    FrameRecord,
    PinholeCamera,
    SceneManifest,
    Similarity,
    assign_splits,
    write_points_ply,
)
from shared.options.sfm import SfmOptions
from shared.output_dir import staged_output_dir
from shared.progress import ProgressFn, no_progress, sub_progress
from shared.video import VideoInfo, probe_video

logger = logging.getLogger(__name__)

#: The entries of a scene directory, published in this order (the report, marking completion, last).
SCENE_ENTRIES: tuple[str, ...] = (IMAGES_DIR, SPARSE_DIR, SCENE_FILE, POINTS_FILE, TRACKS_FILE, REPORT_FILE)


@dataclass(frozen=True)
class SfmResult:
    """What :func:`run_sfm` produced."""

    scene_dir: Path
    frames_decoded: int
    frames_selected: int
    frames_registered: int
    num_points: int
    mean_reprojection_error: float  # pixels
    fallback_used: bool  # whether exhaustive matching on a subset was needed
    seconds: dict[str, float] = field(default_factory=dict)  # per step, plus "total"
    capture: CaptureReport | None = None  # the capture check, the stage's first step

    def metrics(self) -> dict[str, float | int | bool]:
        """The metrics stored on the job's ``sfm`` stage."""
        return {
            "frames_decoded": self.frames_decoded,
            "frames_selected": self.frames_selected,
            "frames_registered": self.frames_registered,
            "num_points": self.num_points,
            "mean_reprojection_error": round(self.mean_reprojection_error, 4),
            "fallback_used": self.fallback_used,
            **{f"seconds_{name}": round(value, 3) for name, value in self.seconds.items()},
        }


def run_sfm(
    video: Path,
    out_dir: Path,
    options: SfmOptions,
    on_progress: ProgressFn = no_progress,
    on_capture: Callable[[CaptureReport], None] | None = None,
) -> SfmResult:
    """Reconstruct the cameras of a video and write a scene directory.

    Args:
        video: the input video (any supported container/codec; rotation metadata honoured).
        out_dir: the scene directory to create; a previous scene there is replaced, only on success.
        options: frame selection, COLMAP settings and what a poor capture does.
        on_progress: ``(fraction, message)`` callback; raising ``Cancelled`` from it stops the run.
        on_capture: called with the capture check's report as soon as it is known (before the
            stage may fail with ``POOR_CAPTURE``).

    Returns:
        Counts, the mean reprojection error, seconds per step and the capture check.

    Raises:
        StageError: ``INVALID_VIDEO``, ``POOR_CAPTURE``, ``VIDEO_TOO_SHORT``, ``TOO_FEW_FRAMES_REGISTERED`` or
            ``SFM_FAILED``; ``Cancelled`` when ``on_progress`` cancels.
    """
    video, out_dir = Path(video), Path(out_dir)
    with staged_output_dir(out_dir, SCENE_ENTRIES) as staging:
        return _run(video, out_dir, staging, options, on_progress, on_capture)


#: Fewest 3D points a reconstruction may have (the tiny test settings give hundreds, the garden clip thousands).
MIN_SCENE_POINTS = 50


def camera_motion_ratio(cam_from_world: np.ndarray, points_xyz: np.ndarray) -> float:
    """How far the camera moved, as a share of its distance to the scene.

    Args:
        cam_from_world: ``[N, 3, 4]`` (or ``[N, 4, 4]``) poses of the registered frames.
        points_xyz: ``[M, 3]`` sparse points in the same frame.

    Returns:
        The largest distance of a camera centre from their mean, over the median camera-to-point
        distance: about 0.6 for a walk around an object, a few hundredths for a camera turned on the
        spot (where only noise separates the centres).
    """
    rotation, translation = cam_from_world[:, :3, :3], cam_from_world[:, :3, 3]
    centers = -np.einsum("nji,nj->ni", rotation, translation)  # [N, 3]
    spread = float(np.linalg.norm(centers - centers.mean(axis=0), axis=1).max())
    sample = points_xyz[:: max(1, len(points_xyz) // 2000)]  # [<=~2000, 3]: the median needs no more
    depth = float(np.median(np.linalg.norm(sample[None, :, :] - centers[:, None, :], axis=2)))
    return spread / max(depth, 1e-12)


def check_camera_motion(cam_from_world: np.ndarray, points_xyz: np.ndarray, min_ratio: float) -> None:
    """Refuse a reconstruction whose camera turned on the spot: without parallax its depth is noise.

    A reconstruction of fewer than :data:`MIN_SCENE_POINTS` points is refused first: its motion ratio
    (a median over the points) means nothing, and it has nothing to train on. COLMAP gave one of 2
    points and 10 registered frames for a camera turned in place, whose ratio then passed.

    Raises:
        StageError: ``VIDEO_TOO_SHORT`` (not enough camera motion) with the measured ratio, or with the
            point count when there are too few points.
    """
    if len(points_xyz) < MIN_SCENE_POINTS:
        raise StageError(
            ErrorCode.VIDEO_TOO_SHORT,
            f"COLMAP placed only {len(points_xyz)} points in depth from {len(cam_from_world)} frames (at least "
            f"{MIN_SCENE_POINTS} are needed): the camera turned on the spot or barely moved, or the scene has "
            "too little texture. Walk around a textured object instead of turning in place.",
            details={"num_points": len(points_xyz), "frames_registered": len(cam_from_world)},
        )
    ratio = camera_motion_ratio(cam_from_world, points_xyz)
    if ratio < min_ratio:
        raise StageError(
            ErrorCode.VIDEO_TOO_SHORT,
            f"The camera turned on the spot: its positions span {100 * ratio:.1f} % of its distance to the scene "
            f"(at least {100 * min_ratio:.0f} % is needed), so nothing can be placed in depth. Walk around the "
            "object instead of turning in place.",
            details={"camera_motion_ratio": round(ratio, 4), "frames_registered": len(cam_from_world)},
        )


def check_capture_step(
    video: Path,
    info: VideoInfo,
    options: SfmOptions,
    on_progress: ProgressFn,
    on_capture: Callable[[CaptureReport], None] | None,
) -> CaptureReport | None:
    """The stage's first step: the capture check, published, and fatal for a poor capture when asked.

    Returns:
        The report; None when the check itself broke (logged): it only advises, so the stage goes on.

    Raises:
        StageError: ``POOR_CAPTURE`` (permanent) with the advice, when the verdict is ``poor`` and
            ``options.on_poor_capture`` is ``fail``; the report is in ``details["capture"]``.
    """
    from shared.capture.check import check_capture  # OpenCV: imported where the stage runs

    try:
        report = check_capture(video, on_progress, info=info)
    except StageError:
        raise
    except Exception:  # the check only advises: a fault in it never costs the user the reconstruction
        logger.exception("the capture check failed on %s; going on without it", video.name)
        return None
    logger.info("%s", report.summary())
    if on_capture is not None:
        on_capture(report)
    if report.verdict == "poor" and options.on_poor_capture == "fail":
        raise StageError(
            ErrorCode.POOR_CAPTURE,
            "The capture check judged this video poor, and the job asked to stop then "
            f"(on_poor_capture=fail). {' '.join(report.advice)} Film again, or submit with "
            "on_poor_capture=continue to try anyway.",
            details={"capture": report.model_dump(mode="json")},
        )
    return report


def _run(
    video: Path,
    out_dir: Path,
    staging: Path,
    options: SfmOptions,
    on_progress: ProgressFn,
    on_capture: Callable[[CaptureReport], None] | None,
) -> SfmResult:
    total_started = time.monotonic()
    seconds: dict[str, float] = {}

    started = time.monotonic()
    on_progress(0.0, "checking the video")
    info = probe_video(video)
    seconds["probe"] = time.monotonic() - started

    started = time.monotonic()
    capture = check_capture_step(video, info, options, sub_progress(on_progress, 0.0, 0.03), on_capture)
    seconds["capture_check"] = time.monotonic() - started

    started = time.monotonic()
    work = staging / "work"
    frames_dir = work / "frames"
    count = target_count(info, options.target_frames, options.max_frames)
    selection = select_frames(
        video,
        info,
        frames_dir,
        count=count,
        max_long_side=options.max_long_side,
        min_frames=options.min_frames,
        min_frame_difference=options.min_frame_difference,
        on_progress=sub_progress(on_progress, 0.03, 0.15),
    )
    seconds["frame_selection"] = time.monotonic() - started

    names = [f.file for f in selection.frames]
    run = colmap_io.reconstruct(frames_dir, names, work / "colmap", options, sub_progress(on_progress, 0.15, 0.85))
    seconds.update(run.seconds)

    started = time.monotonic()
    undistorted = work / "undistorted"
    model = colmap_io.undistort(run.model_dir, frames_dir, undistorted, options, sub_progress(on_progress, 0.85, 0.95))
    seconds["undistortion"] = time.monotonic() - started
    check_camera_motion(model.cam_from_world, model.points_xyz, options.min_baseline_ratio)

    started = time.monotonic()
    on_progress(0.95, "writing the scene")
    world_from_colmap = normalizing_similarity(model.cam_from_world)
    manifest, frame_of_image = _manifest(model, selection, world_from_colmap, info, video)
    shutil.move(str(undistorted / "images"), str(staging / IMAGES_DIR))
    shutil.move(str(undistorted / "sparse"), str(staging / SPARSE_DIR))
    manifest.save(staging)
    write_points_ply(staging / POINTS_FILE, world_from_colmap.apply_points(model.points_xyz), model.points_rgb)
    np.savez(
        staging / TRACKS_FILE,
        point_index=model.track_point.astype(np.int32),
        frame_index=frame_of_image[model.track_image].astype(np.int32),
        point_error=model.points_error.astype(np.float32),
    )
    shutil.rmtree(work)
    seconds["writing"] = time.monotonic() - started
    seconds["total"] = time.monotonic() - total_started

    result = SfmResult(
        scene_dir=out_dir,
        frames_decoded=selection.frames_decoded,
        frames_selected=len(selection.frames),
        frames_registered=len(manifest.frames),
        num_points=len(model.points_xyz),
        mean_reprojection_error=model.mean_reprojection_error,
        fallback_used=run.fallback_used,
        seconds=seconds,
        capture=capture,
    )
    report = {
        **result.metrics(),
        "video": info.model_dump(),
        "options": options.model_dump(),
        "capture": None if capture is None else capture.model_dump(mode="json"),
    }
    (staging / REPORT_FILE).write_text(json.dumps(report, indent=2))
    on_progress(1.0, f"registered {result.frames_registered} of {result.frames_selected} frames")
    return result


def _manifest(
    model: colmap_io.SparseModel,
    selection: FrameSelection,
    world_from_colmap: SimilarityTransform,
    info: VideoInfo,
    video: Path,
) -> tuple[SceneManifest, np.ndarray]:
    """The scene manifest (frames in time order) and, per model image, its row in the manifest."""
    by_name = {f.file: f for f in selection.frames}
    cam_from_world = world_from_colmap.apply_cam_from_world(model.cam_from_world)  # [N, 3, 4]
    order = sorted(range(len(model.image_names)), key=lambda i: by_name[model.image_names[i]].video_frame)
    frame_of_image = np.empty(len(order), dtype=np.int32)
    frame_of_image[order] = np.arange(len(order), dtype=np.int32)
    splits = assign_splits(len(order))
    frames = []
    for row, image in enumerate(order):
        selected = by_name[model.image_names[image]]
        frames.append(
            FrameRecord(
                file=f"{IMAGES_DIR}/{selected.file}",
                video_frame=selected.video_frame,
                timestamp_s=selected.timestamp_s,
                cam_from_world=cam_from_world[image].tolist(),
                split=splits[row],
            )
        )
    centers = -np.einsum("nji,nj->ni", cam_from_world[:, :, :3], cam_from_world[:, :, 3])
    manifest = SceneManifest(
        camera=PinholeCamera(
            fx=model.fx, fy=model.fy, cx=model.cx, cy=model.cy, width=model.width, height=model.height
        ),
        frames=frames,
        world_from_colmap=Similarity(
            scale=world_from_colmap.scale,
            rotation=world_from_colmap.rotation.tolist(),
            translation=world_from_colmap.translation.tolist(),
        ),
        scene_radius=float(np.linalg.norm(centers, axis=1).max()),
        source={
            "video": video.name,
            "container": info.container,
            "codec": info.codec,
            "width": info.width,
            "height": info.height,
            "fps": info.fps,
            "frame_count": info.frame_count,
            "duration_s": info.duration_s,
        },
    )
    return manifest, frame_of_image
