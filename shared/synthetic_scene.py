"""A textured scene the project renders itself, with known cameras: the ground truth for tests and demos.

The scene is analytic (spheres and boxes on a ground plane inside a textured backdrop cylinder) and
ray-cast with numpy, so rendering is exact, fast (a few ms per small frame) and needs no GPU. Its
surfaces carry solid (3D) textures, so a point looks the same from every view, which structure
from motion needs, and its colours have sharp cell corners for SIFT plus smooth noise.

The world is already the normalised world of the scene manifest: centred near the origin, cameras
on a radius of about 1, OpenCV cameras, −y up (the ground is the plane ``y = GROUND_Y`` below the
objects).

Two products:
- :func:`render_capture` writes an H.264 video of a smooth orbit plus ``ground_truth.json`` (the
  intrinsics and the ``cam_from_world`` of every video frame): the input of the SfM stage.
- :func:`write_ground_truth_scene` writes a ready scene directory (images, ``scene.json``,
  ``points.ply``, ``tracks.npz``) with the true cameras and surface points, so training stages are
  tested without running SfM.

Example:
    >>> import numpy as np
    >>> K = intrinsics(64, 36)
    >>> rgb, depth = render_view(orbit_cam_from_world(4)[0], K, 64, 36)
    >>> rgb.shape, rgb.dtype, bool(np.isfinite(depth).all())
    ((36, 64, 3), dtype('uint8'), True)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.camera_path import camera_centers, look_at
from shared.manifest import (
    IMAGES_DIR,
    POINTS_FILE,
    TRACKS_FILE,
    FrameRecord,
    PinholeCamera,
    SceneManifest,
    Similarity,
    assign_splits,
    write_points_ply,
)

GROUND_Y = 0.3  # the ground plane; +y is down, so the objects stand on it from above
BACKDROP_RADIUS = 3.0
LOOK_AT = np.array([0.0, 0.05, 0.0])
LIGHT_DIR = np.array([0.35, -1.0, -0.45]) / np.linalg.norm([0.35, -1.0, -0.45])  # towards the light
GROUND_TRUTH_FILE = "ground_truth.json"
_SUPERSAMPLE = 2

# (kind, centre, size, base colour): spheres have a radius, boxes half-extents. All stand on the ground.
_OBJECTS: tuple[tuple[str, tuple[float, float, float], tuple[float, ...], tuple[float, float, float]], ...] = (
    ("sphere", (0.17, GROUND_Y - 0.19, 0.06), (0.19,), (0.85, 0.35, 0.25)),
    ("box", (-0.2, GROUND_Y - 0.16, -0.08), (0.12, 0.16, 0.11), (0.25, 0.45, 0.85)),
    ("sphere", (-0.02, GROUND_Y - 0.09, -0.33), (0.09,), (0.3, 0.8, 0.35)),
    ("box", (0.05, GROUND_Y - 0.06, 0.3), (0.16, 0.06, 0.07), (0.9, 0.8, 0.3)),
    ("sphere", (-0.33, GROUND_Y - 0.07, 0.25), (0.07,), (0.75, 0.4, 0.8)),
)
_GROUND_COLOUR = (0.6, 0.55, 0.45)
_BACKDROP_COLOUR = (0.55, 0.65, 0.75)


@dataclass(frozen=True)
class SyntheticCapture:
    """A rendered video and its ground truth."""

    video: Path
    width: int
    height: int
    fps: float
    K: np.ndarray  # [3, 3]
    cam_from_world: np.ndarray  # [N, 4, 4], one per video frame, OpenCV convention
    scene_radius: float


def intrinsics(width: int, height: int, *, fov_x_deg: float = 60.0) -> np.ndarray:
    """A pinhole ``K`` ``[3, 3]`` with square pixels and the principal point at the image centre."""
    f = 0.5 * width / np.tan(np.radians(fov_x_deg) / 2)
    return np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])


UP = np.array([0.0, -1.0, 0.0])  # world up: −y


def orbit_cam_from_world(
    n_frames: int, *, arc_deg: float = 150.0, radius: float = 1.0, height: float = -0.28, start_deg: float = -20.0
) -> np.ndarray:
    """A smooth orbit around :data:`LOOK_AT` with a gentle vertical bob, ``[n_frames, 4, 4]``."""
    s = np.linspace(0.0, 1.0, n_frames)
    angles = np.radians(start_deg + arc_deg * s)
    heights = height + 0.06 * np.sin(2 * np.pi * s)
    radii = radius * (1.0 + 0.05 * np.cos(2 * np.pi * s))
    centers = np.stack([radii * np.sin(angles), heights, -radii * np.cos(angles)], axis=1)
    return np.stack([look_at(c, LOOK_AT, UP) for c in centers])


# --- solid textures -----------------------------------------------------------------------------------


def _hash3(cells: np.ndarray, salt: float) -> np.ndarray:
    """Pseudo-random values in [0, 1) for integer lattice cells ``[..., 3]`` (deterministic)."""
    dot = cells @ np.array([127.1, 311.7, 74.7]) + salt * 17.13
    return np.asarray(np.modf(np.abs(np.sin(dot) * 43758.5453))[0])


def _value_noise(p: np.ndarray, freq: float, salt: float) -> np.ndarray:
    """Smooth value noise in [0, 1] at points ``p`` ``[M, 3]``."""
    q = p * freq
    base = np.floor(q)
    f = q - base
    f = f * f * (3.0 - 2.0 * f)
    out = np.zeros(len(p))
    for corner in np.ndindex(2, 2, 2):
        offset = np.array(corner, dtype=np.float64)
        weight = np.prod(np.where(offset == 1.0, f, 1.0 - f), axis=1)
        out += weight * _hash3(base + offset, salt)
    return out


def _texture(p: np.ndarray, base: tuple[float, float, float], salt: float, cell: float) -> np.ndarray:
    """Colour ``[M, 3]`` of a surface at points ``p`` ``[M, 3]``: random-colour cells over smooth noise."""
    h = _hash3(np.floor(p / cell), salt)
    # four decorrelated values from one hash: brightness and an RGB tint
    tint = np.modf(h[:, None] * np.array([1.0, 7.31, 53.17, 389.3]))[0]
    noise = _value_noise(p, 2.5 / cell, salt + 11.0)
    colour = np.asarray(base) * (0.35 + 0.65 * tint[:, :1]) * (0.6 + 0.4 * tint[:, 1:]) + 0.25 * (noise[:, None] - 0.5)
    return np.asarray(np.clip(colour, 0.0, 1.0))


# --- ray casting --------------------------------------------------------------------------------------


def _intersect(origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest hit of rays from ``origin`` ``[3]`` along unit ``dirs`` ``[M, 3]``.

    Returns:
        ``(t [M], surface id [M] (0 backdrop, 1 ground, 2+ objects), normal [M, 3])``.
    """
    m = len(dirs)
    t_best = np.full(m, np.inf)
    ids = np.zeros(m, dtype=np.int64)
    normals = np.zeros((m, 3))

    # backdrop: inside of a vertical cylinder x² + z² = R² (always hit from inside)
    dxz, oxz = dirs[:, [0, 2]], origin[[0, 2]]
    a = np.maximum((dxz**2).sum(1), 1e-12)
    b = dxz @ oxz
    c = oxz @ oxz - BACKDROP_RADIUS**2
    t_best[:] = (-b + np.sqrt(np.maximum(b * b - a * c, 0.0))) / a
    hit = origin + t_best[:, None] * dirs
    normals[:] = -np.stack([hit[:, 0], np.zeros(m), hit[:, 2]], axis=1) / BACKDROP_RADIUS

    # ground plane y = GROUND_Y, seen from above (rays going down, d_y > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(dirs[:, 1] > 1e-9, (GROUND_Y - origin[1]) / dirs[:, 1], np.inf)
    closer = (t > 1e-6) & (t < t_best)
    t_best[closer], ids[closer], normals[closer] = t[closer], 1, (0.0, -1.0, 0.0)

    for k, (kind, centre, size, _) in enumerate(_OBJECTS):
        centre_arr = np.asarray(centre)
        if kind == "sphere":
            oc = origin - centre_arr
            b = dirs @ oc
            disc = b * b - (oc @ oc - size[0] ** 2)
            t = np.where(disc > 0, -b - np.sqrt(np.maximum(disc, 0.0)), np.inf)
            closer = (t > 1e-6) & (t < t_best)
            t_best[closer], ids[closer] = t[closer], k + 2
            normals[closer] = (origin + t[closer, None] * dirs[closer] - centre_arr) / size[0]
        else:
            half = np.asarray(size)
            with np.errstate(divide="ignore", invalid="ignore"):
                inv = 1.0 / np.where(np.abs(dirs) < 1e-12, 1e-12, dirs)
                t0 = (centre_arr - half - origin) * inv
                t1 = (centre_arr + half - origin) * inv
            t_near = np.minimum(t0, t1).max(1)
            t_far = np.maximum(t0, t1).min(1)
            t = np.where((t_near <= t_far) & (t_near > 1e-6), t_near, np.inf)
            closer = t < t_best
            t_best[closer], ids[closer] = t[closer], k + 2
            local = (origin + t[closer, None] * dirs[closer] - centre_arr) / half
            axis = np.abs(local).argmax(1)
            n = np.zeros((int(closer.sum()), 3))
            n[np.arange(len(axis)), axis] = np.sign(local[np.arange(len(axis)), axis])
            normals[closer] = n
    return t_best, ids, normals


def _shade(points: np.ndarray, ids: np.ndarray, normals: np.ndarray, seed: int) -> np.ndarray:
    """Lit colour ``[M, 3]`` of surface points."""
    colour = np.empty((len(points), 3))
    salt = float(seed) * 3.7
    for surface in np.unique(ids):
        sel = ids == surface
        if surface == 0:
            colour[sel] = _texture(points[sel], _BACKDROP_COLOUR, salt + 1.0, cell=0.35)
            continue
        if surface == 1:
            tex = _texture(points[sel], _GROUND_COLOUR, salt + 2.0, cell=0.06)
        else:
            _, _, _, base = _OBJECTS[surface - 2]
            tex = _texture(points[sel], base, salt + 3.0 + surface, cell=0.045)
        lambert = np.clip(normals[sel] @ LIGHT_DIR, 0.0, 1.0)
        colour[sel] = tex * (0.45 + 0.55 * lambert)[:, None]
    return colour


def _rays(cam_from_world: np.ndarray, K: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera centre ``[3]`` and unit world-space ray directions ``[H*W, 3]`` through pixel centres."""
    R, t = cam_from_world[:3, :3], cam_from_world[:3, 3]
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    pix = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], axis=1)
    dirs_cam = pix @ np.linalg.inv(K).T
    dirs = dirs_cam @ R  # R^T applied to each row
    return -R.T @ t, dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


def render_view(
    cam_from_world: np.ndarray,
    K: np.ndarray,
    width: int,
    height: int,
    *,
    seed: int = 0,
    supersample: int = _SUPERSAMPLE,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one view.

    Args:
        cam_from_world: ``[4, 4]`` (or ``[3, 4]``) OpenCV extrinsics.
        K: ``[3, 3]`` intrinsics for ``width × height``.
        width: image width in pixels.
        height: image height in pixels.
        seed: selects the texture variant.
        supersample: rays per pixel along each axis (anti-aliasing).

    Returns:
        ``(rgb [H, W, 3] uint8, depth [H, W] float32)``; depth is the z of the surface in the camera
        at the pixel centre.
    """
    s = supersample
    K_s = K.copy()
    K_s[:2] *= s
    origin, dirs = _rays(cam_from_world, K_s, width * s, height * s)
    t, ids, normals = _intersect(origin, dirs)
    colour = _shade(origin + t[:, None] * dirs, ids, normals, seed)
    rgb = colour.reshape(height, s, width, s, 3).mean(axis=(1, 3))

    origin_c, dirs_c = _rays(cam_from_world, K, width, height)
    t_c, _, _ = _intersect(origin_c, dirs_c)
    z_axis = cam_from_world[2, :3]
    depth = (t_c * (dirs_c @ z_axis)).reshape(height, width)
    return np.round(rgb * 255).astype(np.uint8), depth.astype(np.float32)


def render_capture(
    out_dir: Path,
    *,
    width: int = 320,
    height: int = 180,
    n_frames: int = 60,
    fps: float = 30.0,
    seed: int = 0,
    arc_deg: float = 150.0,
) -> SyntheticCapture:
    """Render an orbit video of the scene with its ground truth.

    Writes ``video.mp4`` (H.264) and ``ground_truth.json`` (``K``, ``cam_from_world`` per frame,
    size, fps) into ``out_dir``.

    Args:
        out_dir: output directory (created).
        width: frame width in pixels (even).
        height: frame height in pixels (even).
        n_frames: number of frames.
        fps: frame rate of the video.
        seed: texture variant.
        arc_deg: how far the camera travels around the scene.

    Returns:
        The capture's description.
    """
    from shared.video import encode_h264

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    K = intrinsics(width, height)
    poses = orbit_cam_from_world(n_frames, arc_deg=arc_deg)
    video = out_dir / "video.mp4"
    encode_h264(video, (render_view(p, K, width, height, seed=seed)[0] for p in poses), fps)
    capture = SyntheticCapture(
        video=video,
        width=width,
        height=height,
        fps=fps,
        K=K,
        cam_from_world=poses,
        scene_radius=float(np.linalg.norm(camera_centers(poses), axis=1).max()),
    )
    (out_dir / GROUND_TRUTH_FILE).write_text(
        json.dumps(
            {
                "width": width,
                "height": height,
                "fps": fps,
                "seed": seed,
                "K": K.tolist(),
                "cam_from_world": poses.tolist(),
                "scene_radius": capture.scene_radius,
            }
        )
    )
    return capture


def load_capture(out_dir: Path) -> SyntheticCapture:
    """Read a capture written by :func:`render_capture`."""
    out_dir = Path(out_dir)
    gt = json.loads((out_dir / GROUND_TRUTH_FILE).read_text())
    return SyntheticCapture(
        video=out_dir / "video.mp4",
        width=gt["width"],
        height=gt["height"],
        fps=gt["fps"],
        K=np.asarray(gt["K"]),
        cam_from_world=np.asarray(gt["cam_from_world"]),
        scene_radius=gt["scene_radius"],
    )


def _surface_points(
    poses: np.ndarray, K: np.ndarray, width: int, height: int, n_points: int, n_backdrop: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sample visible surface points with their rendered colours by lifting random pixels of the views.

    ``n_points`` land on the ground and the objects, ``n_backdrop`` on the textured backdrop (far
    away, but real SfM triangulates textured background too, and a splat scene needs points there).
    """
    rng = np.random.default_rng(seed)
    per_view = min(int(np.ceil(3 * (n_points + n_backdrop) / len(poses))), width * height)
    xyz, rgb, on_backdrop = [], [], []
    for pose in poses:
        image, _ = render_view(pose, K, width, height, seed=seed, supersample=1)
        origin, dirs = _rays(pose, K, width, height)
        pick = rng.choice(width * height, size=per_view, replace=False)
        t, ids, _ = _intersect(origin, dirs[pick])
        xyz.append(origin + t[:, None] * dirs[pick])
        rgb.append(image.reshape(-1, 3)[pick])
        on_backdrop.append(ids == 0)
    xyz_all, rgb_all, backdrop = np.concatenate(xyz), np.concatenate(rgb), np.concatenate(on_backdrop)
    surface = rng.permutation(np.flatnonzero(~backdrop))[:n_points]
    far = rng.permutation(np.flatnonzero(backdrop))[:n_backdrop]
    order = np.concatenate([surface, far])
    return xyz_all[order], rgb_all[order]


def _tracks(
    xyz: np.ndarray, poses: np.ndarray, K: np.ndarray, depths: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Which frames see which points: projected inside the image and not occluded (depth test)."""
    height, width = depths[0].shape
    point_index, frame_index = [], []
    for f, (pose, depth) in enumerate(zip(poses, depths, strict=True)):
        cam = xyz @ pose[:3, :3].T + pose[:3, 3]
        z = cam[:, 2]
        uv = cam[:, :2] / np.maximum(z, 1e-9)[:, None] * K[[0, 1], [0, 1]] + K[:2, 2]
        u, v = np.floor(uv[:, 0]).astype(int), np.floor(uv[:, 1]).astype(int)
        inside = (z > 1e-3) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
        idx = np.flatnonzero(inside)
        visible = np.abs(depth[v[idx], u[idx]] - z[idx]) < 0.02 * z[idx]
        point_index.append(idx[visible])
        frame_index.append(np.full(int(visible.sum()), f))
    return np.concatenate(point_index).astype(np.int32), np.concatenate(frame_index).astype(np.int32)


def write_ground_truth_scene(
    scene_dir: Path,
    *,
    width: int = 160,
    height: int = 90,
    n_frames: int = 40,
    seed: int = 0,
    n_points: int = 4000,
    backdrop_points: int = 0,
    arc_deg: float = 150.0,
    fps: float = 30.0,
) -> SceneManifest:
    """Write a scene directory as the SfM stage would, but with the true cameras and surface points.

    Writes ``images/frame_XXXXX.png``, ``scene.json``, ``points.ply`` and ``tracks.npz`` (with a
    nominal ``point_error`` of 0.5 px) into ``scene_dir``.

    Args:
        scene_dir: output directory (created).
        width: image width in pixels.
        height: image height in pixels.
        n_frames: number of views along the orbit (every 8th is a ``test`` frame).
        seed: texture variant and point sampling.
        n_points: number of sparse points on the ground and the objects.
        backdrop_points: number of extra sparse points on the textured backdrop.
        arc_deg: how far the camera travels around the scene.
        fps: frame rate used for the frames' timestamps.

    Returns:
        The written manifest.
    """
    from PIL import Image

    scene_dir = Path(scene_dir)
    (scene_dir / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    K = intrinsics(width, height)
    poses = orbit_cam_from_world(n_frames, arc_deg=arc_deg)
    splits = assign_splits(n_frames)
    frames, depths = [], []
    for i, pose in enumerate(poses):
        rgb, depth = render_view(pose, K, width, height, seed=seed)
        name = f"{IMAGES_DIR}/frame_{i:05d}.png"
        Image.fromarray(rgb).save(scene_dir / name)
        depths.append(depth)
        frames.append(
            FrameRecord(
                file=name,
                video_frame=i,
                timestamp_s=i / fps,
                cam_from_world=pose[:3, :4].tolist(),
                split=splits[i],
            )
        )
    xyz, rgb = _surface_points(poses, K, width, height, n_points, backdrop_points, seed)
    write_points_ply(scene_dir / POINTS_FILE, xyz, rgb)
    point_index, frame_index = _tracks(xyz, poses, K, depths)
    np.savez(
        scene_dir / TRACKS_FILE,
        point_index=point_index,
        frame_index=frame_index,
        point_error=np.full(len(xyz), 0.5, dtype=np.float32),
    )
    manifest = SceneManifest(
        camera=PinholeCamera(fx=K[0, 0], fy=K[1, 1], cx=K[0, 2], cy=K[1, 2], width=width, height=height),
        frames=frames,
        world_from_colmap=Similarity(scale=1.0, rotation=np.eye(3).tolist(), translation=[0.0, 0.0, 0.0]),
        scene_radius=float(np.linalg.norm(camera_centers(poses), axis=1).max()),
        source={"synthetic": True, "seed": seed, "fps": fps},
    )
    manifest.save(scene_dir)
    return manifest
