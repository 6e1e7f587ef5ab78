"""The flythrough camera path: a smooth, novel path through or around the captured views.

Both training stages render their flythrough along :func:`flythrough_path`. It never replays the
training frames. Two kinds of path:

- ``"orbit"``, for captures that walk around the scene: around the scene's focus point, at the
  capture's median radius and height (lifted slightly), looking at the focus point. A capture that
  closes the circle (≥ :data:`CLOSED_ORBIT_MIN_SWEEP_DEG`) gets one full turn, the way the capture
  turned, starting where it started; a capture that swept less gets a swing over the arc it covered
  (inset by :data:`ARC_INSET_FRACTION` at each end) and back, never through the part of the circle
  no camera saw — the models know nothing there, and a TensoRF field shows its flat background.
- ``"spline"``, for everything else: a clamped uniform cubic B-spline whose control points are the
  camera centres in time order, smoothed over time and subsampled, travelled at constant speed.
  Orientations follow the same spline applied to the smoothed forward and down axes, then
  re-orthonormalised — a smooth rotation interpolation that, unlike a look-at, also serves
  forward-facing captures. The path is lifted slightly along the capture's up direction so that it
  coincides with no training pose and shows some parallax.

``"auto"`` picks ``"orbit"`` when the cameras sweep at least :data:`ORBIT_MIN_SWEEP_DEG` around the
focus point (measured in the plane perpendicular to the up direction), else ``"spline"``.

The focus point is the least-squares point closest to all optical axes (where the cameras look);
when the axes are nearly parallel it falls back to a point in front of the cameras.

All poses are OpenCV ``cam_from_world`` 4×4 matrices (x right, y down, z forward).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    from shared.manifest import PinholeCamera, SceneManifest

PathKind = Literal["auto", "orbit", "spline"]

#: Swept angle around the focus point from which ``"auto"`` chooses an orbit.
ORBIT_MIN_SWEEP_DEG = 270.0
#: Swept angle from which an orbit closes the circle; below it the orbit swings over the captured arc.
CLOSED_ORBIT_MIN_SWEEP_DEG = 340.0
#: Share of a captured arc left out at each end of a swinging orbit (the ends were seen from one side only).
ARC_INSET_FRACTION = 0.05
#: How far the path is lifted along the up direction, as a fraction of the capture radius.
LIFT_FRACTION = 0.05
#: At most this many spline control points (more would follow the hand's jitter).
MAX_CONTROL_POINTS = 10


def camera_centers(cam_from_world: np.ndarray) -> np.ndarray:
    """Camera centres ``-Rᵀt`` of ``[N, 4, 4]`` (or ``[N, 3, 4]``) poses; returns ``[N, 3]``."""
    rot = cam_from_world[:, :3, :3]
    t = cam_from_world[:, :3, 3]
    return np.asarray(-np.einsum("nji,nj->ni", rot, t))


def _normalize(v: np.ndarray) -> np.ndarray:
    return np.asarray(v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12))


def focus_point(cam_from_world: np.ndarray) -> np.ndarray:
    """The point the cameras look at: closest, in least squares, to every optical axis.

    Args:
        cam_from_world: ``[N, 4, 4]`` poses.

    Returns:
        ``[3]`` world point. When the axes are nearly parallel (a forward-facing capture) or the
        solution lies behind the cameras, a point in front of the mean camera at a distance of the
        cameras' spread (at least 1) instead.
    """
    centers = camera_centers(cam_from_world)  # [N, 3]
    forward = _normalize(cam_from_world[:, 2, :3])  # [N, 3]: camera z axis in the world
    proj = np.eye(3)[None] - forward[:, :, None] * forward[:, None, :]  # [N, 3, 3]
    a = proj.sum(axis=0)
    b = np.einsum("nij,nj->i", proj, centers)
    eig = np.linalg.eigvalsh(a)
    fallback_dist = max(1.0, float(np.linalg.norm(centers - centers.mean(0), axis=1).max(initial=0.0)))
    fallback: np.ndarray = centers.mean(0) + _normalize(forward.mean(0)) * fallback_dist
    if eig[0] < 1e-2 * len(centers):
        return fallback
    point: np.ndarray = np.linalg.solve(a, b)
    in_front = np.einsum("ni,ni->n", point[None] - centers, forward)
    if np.median(in_front) <= 0:
        return fallback
    return point


def up_direction(cam_from_world: np.ndarray) -> np.ndarray:
    """The capture's up direction: the mean of the cameras' up axes (``-y`` of each camera), ``[3]``."""
    return _normalize(-cam_from_world[:, 1, :3].mean(axis=0))


def swept_angle_deg(cam_from_world: np.ndarray) -> float:
    """How many degrees the camera centres turn around the focus point, in time order.

    Angles are measured in the plane perpendicular to :func:`up_direction` and unwrapped, so a
    capture that walks around the scene 1.5 times sweeps 540°.
    """
    centers = camera_centers(cam_from_world)
    up = up_direction(cam_from_world)
    e1, e2 = _plane_basis(up)
    rel = centers - focus_point(cam_from_world)
    angles = np.unwrap(np.arctan2(rel @ e2, rel @ e1))
    return float(np.degrees(angles.max() - angles.min()))


def _plane_basis(up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    e1 = _normalize(np.cross(up, helper))
    e2 = np.cross(up, e1)
    return e1, e2


def look_at(position: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """``cam_from_world`` ``[4, 4]`` of an OpenCV camera at ``position`` looking at ``target``.

    Args:
        position: ``[3]`` camera centre.
        target: ``[3]`` point on the optical axis.
        up: ``[3]`` world direction that appears upward in the image (``-y`` of the camera).
    """
    z = _normalize(target - position)
    x = np.cross(-up, z)
    if np.linalg.norm(x) < 1e-9:  # looking straight up or down: any right axis will do
        x = np.cross(_plane_basis(z)[0], z)
    x = _normalize(x)
    y = np.cross(z, x)
    out = np.eye(4)
    out[:3, :3] = np.stack([x, y, z])
    out[:3, 3] = -out[:3, :3] @ position
    return out


def _orbit(cam_from_world: np.ndarray, n_frames: int) -> np.ndarray:
    centers = camera_centers(cam_from_world)
    focus = focus_point(cam_from_world)
    up = up_direction(cam_from_world)
    e1, e2 = _plane_basis(up)
    rel = centers - focus
    height = rel @ up  # [N]
    planar = rel - height[:, None] * up
    radius = float(np.median(np.linalg.norm(planar, axis=1)))
    angles = np.unwrap(np.arctan2(rel @ e2, rel @ e1))
    direction = 1.0 if angles[-1] >= angles[0] else -1.0
    lift = LIFT_FRACTION * float(np.median(np.linalg.norm(rel, axis=1)))
    z = float(np.median(height)) + lift
    sweep = float(angles.max() - angles.min())
    if np.degrees(sweep) >= CLOSED_ORBIT_MIN_SWEEP_DEG:
        theta = angles[0] + direction * 2.0 * np.pi * np.arange(n_frames) / n_frames  # a closed loop
    else:  # over the covered arc and back: θ eases from one inset end to the other and returns
        low = float(angles.min()) + ARC_INSET_FRACTION * sweep
        high = float(angles.max()) - ARC_INSET_FRACTION * sweep
        ease = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_frames) / n_frames)  # 0 → 1 → 0, smooth
        start, end = (low, high) if direction > 0 else (high, low)
        theta = start + (end - start) * ease
    out = np.empty((n_frames, 4, 4))
    for i, th in enumerate(theta):
        position = focus + radius * (np.cos(th) * e1 + np.sin(th) * e2) + z * up
        out[i] = look_at(position, focus, up)
    return out


def _gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Smooth ``[N, D]`` along N with a Gaussian of ``sigma`` samples, renormalised at the ends."""
    if sigma <= 0 or len(values) < 3:
        return values.copy()
    idx = np.arange(len(values))
    w = np.exp(-((idx[:, None] - idx[None, :]) ** 2) / (2.0 * sigma**2))  # [N, N]
    return np.asarray((w @ values) / w.sum(axis=1, keepdims=True))


def _bspline(control: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Clamped uniform cubic B-spline of ``control`` ``[K, D]`` at parameters ``u`` in ``[0, 1]``."""
    padded = np.concatenate([control[:1], control[:1], control, control[-1:], control[-1:]])  # [K+4, D]
    n_seg = len(padded) - 3
    s = np.clip(u, 0.0, 1.0) * n_seg
    seg = np.minimum(s.astype(int), n_seg - 1)
    t = (s - seg)[:, None]
    b0 = (1 - t) ** 3 / 6
    b1 = (3 * t**3 - 6 * t**2 + 4) / 6
    b2 = (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6
    b3 = t**3 / 6
    return np.asarray(b0 * padded[seg] + b1 * padded[seg + 1] + b2 * padded[seg + 2] + b3 * padded[seg + 3])


def _spline(cam_from_world: np.ndarray, n_frames: int) -> np.ndarray:
    n = len(cam_from_world)
    centers = camera_centers(cam_from_world)
    forward = cam_from_world[:, 2, :3]
    down = cam_from_world[:, 1, :3]
    sigma = n / (2.0 * MAX_CONTROL_POINTS)
    n_ctrl = int(np.clip(n, 2, MAX_CONTROL_POINTS))
    pick = np.round(np.linspace(0, n - 1, n_ctrl)).astype(int)
    ctrl_pos = _gaussian_smooth(centers, sigma)[pick]
    ctrl_fwd = _normalize(_gaussian_smooth(forward, sigma)[pick])
    ctrl_down = _normalize(_gaussian_smooth(down, sigma)[pick])

    # constant speed: invert the arc length of a dense sampling
    dense_u = np.linspace(0.0, 1.0, max(50 * n_frames, 500))
    dense = _bspline(ctrl_pos, dense_u)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
    radius = float(np.median(np.linalg.norm(centers - focus_point(cam_from_world), axis=1)))
    if arc[-1] > 1e-6 * max(radius, 1e-9):
        u = np.interp(np.linspace(0.0, arc[-1], n_frames), arc, dense_u)
    else:  # the camera only turned on the spot
        u = np.linspace(0.0, 1.0, n_frames)

    up = up_direction(cam_from_world)
    positions = _bspline(ctrl_pos, u) + LIFT_FRACTION * radius * up  # [F, 3]
    z = _normalize(_bspline(ctrl_fwd, u))  # [F, 3]
    y = _bspline(ctrl_down, u)
    x = _normalize(np.cross(y, z))
    y = np.cross(z, x)
    out = np.tile(np.eye(4), (n_frames, 1, 1))
    out[:, :3, :3] = np.stack([x, y, z], axis=1)
    out[:, :3, 3] = -np.einsum("fij,fj->fi", out[:, :3, :3], positions)
    return out


def choose_kind(cam_from_world: np.ndarray) -> Literal["orbit", "spline"]:
    """``"orbit"`` when the capture sweeps at least :data:`ORBIT_MIN_SWEEP_DEG` around its focus."""
    return "orbit" if swept_angle_deg(cam_from_world) >= ORBIT_MIN_SWEEP_DEG else "spline"


def flythrough_path(cam_from_world: np.ndarray, n_frames: int, *, kind: PathKind = "auto") -> np.ndarray:
    """A smooth novel camera path through or around the captured views.

    Args:
        cam_from_world: ``[N, 4, 4]`` (or ``[N, 3, 4]``) training poses in time order, ``N ≥ 2``.
        n_frames: number of poses to return, ``≥ 2``.
        kind: ``"orbit"``, ``"spline"`` or ``"auto"`` (see the module docstring).

    Returns:
        ``[n_frames, 4, 4]`` float64 ``cam_from_world`` poses.

    Example:
        >>> angles = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        >>> poses = np.stack([look_at(np.array([np.cos(a), -0.3, np.sin(a)]), np.zeros(3),
        ...                           np.array([0.0, -1.0, 0.0])) for a in angles])
        >>> flythrough_path(poses, 90).shape
        (90, 4, 4)
    """
    poses = np.asarray(cam_from_world, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] not in ((4, 4), (3, 4)):
        raise ValueError(f"expected [N, 4, 4] poses, got shape {poses.shape}")
    if poses.shape[1] == 3:
        poses = np.concatenate([poses, np.tile([[[0.0, 0.0, 0.0, 1.0]]], (len(poses), 1, 1))], axis=1)
    if len(poses) < 2:
        raise ValueError("a flythrough needs at least 2 training poses")
    if n_frames < 2:
        raise ValueError("a flythrough needs at least 2 frames")
    chosen = choose_kind(poses) if kind == "auto" else kind
    if chosen == "orbit":
        return _orbit(poses, n_frames)
    if chosen == "spline":
        return _spline(poses, n_frames)
    raise ValueError(f"unknown path kind {kind!r}")


def scene_flythrough_path(manifest: SceneManifest, n_frames: int, *, kind: PathKind = "auto") -> np.ndarray:
    """:func:`flythrough_path` over all of a scene's frames (train and test) in capture-time order.

    Args:
        manifest: the scene.
        n_frames: number of poses to return, ``≥ 2``.
        kind: ``"orbit"``, ``"spline"`` or ``"auto"``.

    Returns:
        ``[n_frames, 4, 4]`` float64 ``cam_from_world`` poses.
    """
    frames = sorted(manifest.frames, key=lambda f: (f.timestamp_s, f.video_frame))
    return flythrough_path(np.stack([f.cam_from_world_matrix() for f in frames]), n_frames, kind=kind)


class FlythroughOptions(Protocol):
    """The flythrough options both training stages have (``SplatOptions``, ``TensorfOptions``)."""

    @property
    def flythrough_seconds(self) -> float: ...  # pragma: no cover - a protocol

    @property
    def flythrough_fps(self) -> int: ...  # pragma: no cover - a protocol

    @property
    def flythrough_long_side(self) -> int: ...  # pragma: no cover - a protocol

    @property
    def flythrough_path(self) -> PathKind: ...  # pragma: no cover - a protocol


def flythrough_plan(manifest: SceneManifest, options: FlythroughOptions) -> tuple[np.ndarray, PinholeCamera]:
    """What both training stages render as their flythrough: the poses and the camera.

    Args:
        manifest: the scene.
        options: the stage's options: ``max(2, round(flythrough_seconds · flythrough_fps))`` poses of the
            ``flythrough_path`` kind (:func:`flythrough_path`), the scene's camera scaled down (never up) to
            ``flythrough_long_side``.

    Returns:
        ``([n_frames, 4, 4] cam_from_world poses, the camera)``.
    """
    from shared.video import output_size

    n_frames = max(2, round(options.flythrough_seconds * options.flythrough_fps))
    poses = scene_flythrough_path(manifest, n_frames, kind=options.flythrough_path)
    camera = manifest.camera
    return poses, camera.scaled(*output_size(camera.width, camera.height, options.flythrough_long_side))
