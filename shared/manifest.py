"""The scene manifest (``scene.json``): written by the SfM stage, read by the training stages.

Conventions (see ``docs/architecture.md``, "Scene manifest", and ``docs/sfm.md``, "Output"):

- OpenCV cameras: x right, y down, z forward. Transforms are named ``a_from_b``; ``cam_from_world``
  is a 3×4 row-major matrix ``[R | t]`` with ``x_cam = R @ x_world + t``.
- One pinhole camera after undistortion.
- The world is normalised: centred on the scene, scaled so the cameras fit a unit-ish radius and
  oriented so that −y is up. ``world_from_colmap`` records the similarity from COLMAP's frame.
- Every 8th frame (``index % 8 == 0`` in time order) is a held-out ``test`` frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

SCENE_FILE = "scene.json"
POINTS_FILE = "points.ply"
TRACKS_FILE = "tracks.npz"
IMAGES_DIR = "images"
SPARSE_DIR = "sparse"
TEST_EVERY = 8

Split = Literal["train", "test"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PinholeCamera(_Frozen):
    """The one undistorted pinhole camera every frame shares (pixels)."""

    fx: float = Field(gt=0)
    fy: float = Field(gt=0)
    cx: float
    cy: float
    width: int = Field(gt=0)
    height: int = Field(gt=0)

    def K(self) -> np.ndarray:
        """The 3×3 intrinsic matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, width: int, height: int) -> PinholeCamera:
        """The same camera for images resized to ``width × height``."""
        sx, sy = width / self.width, height / self.height
        return PinholeCamera(
            fx=self.fx * sx, fy=self.fy * sy, cx=self.cx * sx, cy=self.cy * sy, width=width, height=height
        )


class FrameRecord(_Frozen):
    """One registered, undistorted frame."""

    file: str = Field(description="path relative to the scene directory, e.g. images/frame_00012.jpg")
    video_frame: int = Field(ge=0, description="0-based index of the decoded frame in the video")
    timestamp_s: float = Field(ge=0)
    cam_from_world: list[list[float]] = Field(description="3×4 row-major [R | t]")
    split: Split

    @field_validator("cam_from_world")
    @classmethod
    def _is_3x4(cls, value: list[list[float]]) -> list[list[float]]:
        if len(value) != 3 or any(len(row) != 4 for row in value):
            raise ValueError("cam_from_world must be 3×4")
        return value

    @field_validator("file")
    @classmethod
    def _is_relative(cls, value: str) -> str:
        parts = Path(value).parts
        if Path(value).is_absolute() or ".." in parts or not parts:
            raise ValueError("frame file must be a relative path inside the scene directory")
        return value

    def cam_from_world_matrix(self) -> np.ndarray:
        """``cam_from_world`` as a 4×4 float64 matrix."""
        out = np.eye(4)
        out[:3, :4] = np.asarray(self.cam_from_world, dtype=np.float64)
        return out

    def camera_center(self) -> np.ndarray:
        """The camera centre in world coordinates, ``-Rᵀ t``."""
        m = np.asarray(self.cam_from_world, dtype=np.float64)
        return -m[:, :3].T @ m[:, 3]


class Similarity(_Frozen):
    """``x_world = scale * rotation @ x_colmap + translation``."""

    scale: float = Field(gt=0)
    rotation: list[list[float]]
    translation: list[float]


class SceneManifest(_Frozen):
    """Everything a training stage needs to know about a posed capture."""

    schema_version: Literal[1] = 1
    camera: PinholeCamera
    frames: list[FrameRecord]
    world_from_colmap: Similarity
    up: Literal["-y"] = "-y"
    scene_radius: float = Field(gt=0, description="radius of the camera centres around the world origin")
    points_file: str = POINTS_FILE
    tracks_file: str | None = Field(
        default=TRACKS_FILE,
        description="npz with int32 arrays point_index, frame_index: which frame observed which point",
    )
    source: dict[str, object] = Field(default_factory=dict, description="video name, fps, size, ...")

    def split(self, which: Split) -> list[FrameRecord]:
        """The frames of one split, in time order."""
        return [f for f in self.frames if f.split == which]

    def save(self, scene_dir: Path) -> Path:
        """Write ``scene.json`` into ``scene_dir`` and return its path."""
        path = Path(scene_dir) / SCENE_FILE
        path.write_text(self.model_dump_json(indent=2))
        return path

    @classmethod
    def load(cls, scene_dir: Path) -> SceneManifest:
        """Read ``scene.json`` from ``scene_dir``."""
        return cls.model_validate_json((Path(scene_dir) / SCENE_FILE).read_text())


def assign_splits(n_frames: int) -> list[Split]:
    """Train/test split for ``n_frames`` frames in time order: every 8th frame is held out."""
    return ["test" if i % TEST_EVERY == 0 else "train" for i in range(n_frames)]


# --- points.ply: binary little-endian, x y z float32, red green blue uint8 ----------------------------

_POINT_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])


def write_points_ply(path: Path, xyz: np.ndarray, rgb: np.ndarray) -> None:
    """Write sparse points as a binary PLY.

    Args:
        path: output file.
        xyz: ``[N, 3]`` positions in the normalised world.
        rgb: ``[N, 3]`` uint8 colours.
    """
    xyz = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
    rgb = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3)
    if len(xyz) != len(rgb):
        raise ValueError(f"{len(xyz)} positions but {len(rgb)} colours")
    data = np.empty(len(xyz), dtype=_POINT_DTYPE)
    for i, name in enumerate("xyz"):
        data[name] = xyz[:, i]
    for i, name in enumerate(("red", "green", "blue")):
        data[name] = rgb[:, i]
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(data)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        "end_header\n"
    )
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(data.tobytes())


def read_points_ply(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a file written by :func:`write_points_ply`.

    Returns:
        ``(xyz [N, 3] float32, rgb [N, 3] uint8)``.
    """
    raw = Path(path).read_bytes()
    end = raw.find(b"end_header\n")
    if not raw.startswith(b"ply\n") or end < 0:
        raise ValueError(f"{path} is not a PLY file")
    header = raw[:end].decode("ascii").splitlines()
    count = next(int(line.split()[2]) for line in header if line.startswith("element vertex"))
    props = [line.split()[2] for line in header if line.startswith("property")]
    if props != list(_POINT_DTYPE.names or ()):
        raise ValueError(f"{path}: unexpected properties {props}")
    data = np.frombuffer(raw, dtype=_POINT_DTYPE, count=count, offset=end + len(b"end_header\n"))
    xyz = np.stack([data["x"], data["y"], data["z"]], axis=1).astype(np.float32)
    rgb = np.stack([data["red"], data["green"], data["blue"]], axis=1).astype(np.uint8)
    return xyz, rgb
