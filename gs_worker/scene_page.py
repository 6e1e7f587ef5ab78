"""``scene.html``: one self-contained page that shows the splats offline, from disk, with no server.

The page is the template ``scene_viewer/template.html`` with our viewer (``scene_viewer/viewer.js``, WebGL2,
~350 lines, no libraries) and its CSS inlined, and a JSON block holding ``scene.spz`` as base64, the
capture's camera path (every frame's pose in time order, in the exported frame) and the orbit target (the
point the cameras look at). A Content-Security-Policy of ``default-src 'none'`` (inline script and style
only) keeps the page from making any request. Nothing a user sent reaches the page: the JSON holds
numbers and base64 only.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import numpy as np

from gs_worker.scene_frame import ExportFrame
from shared.camera_path import focus_point
from shared.manifest import SceneManifest

VIEWER_DIR = Path(__file__).with_name("scene_viewer")


def _poses(manifest: SceneManifest, frame: ExportFrame) -> list[dict[str, list[float] | list[list[float]]]]:
    """Every frame's camera in time order: rows of ``R`` (x right, y down, z forward) and the centre, exported frame."""
    frames = sorted(manifest.frames, key=lambda f: f.timestamp_s)
    out: list[dict[str, list[float] | list[list[float]]]] = []
    for f in frames:
        m = f.cam_from_world_matrix()
        center = frame.apply_points(f.camera_center()[None])[0]
        rows = frame.camera_rotation(m)
        out.append({"rows": np.round(rows, 6).tolist(), "center": np.round(center, 6).tolist()})
    return out


def page_data(spz: bytes, manifest: SceneManifest, frame: ExportFrame) -> dict[str, object]:
    """The JSON the viewer reads: the SPZ (base64), the camera's ``fy``/``height``, the poses and the target."""
    poses = np.stack([f.cam_from_world_matrix() for f in manifest.frames])
    target = frame.apply_points(focus_point(poses)[None])[0]
    return {
        "spz": base64.b64encode(spz).decode("ascii"),
        "camera": {"fy": manifest.camera.fy, "height": manifest.camera.height},
        "poses": _poses(manifest, frame),
        "target": np.round(target, 6).tolist(),
    }


def render_page(data: dict[str, object]) -> str:
    """The page's HTML with the viewer, its CSS and ``data`` inlined."""
    template = (VIEWER_DIR / "template.html").read_text(encoding="utf-8")
    script = (VIEWER_DIR / "viewer.js").read_text(encoding="utf-8")
    css = (VIEWER_DIR / "viewer.css").read_text(encoding="utf-8")
    # ensure_ascii and "<" escaped: the JSON can never close its <script> element
    payload = json.dumps(data, ensure_ascii=True, separators=(",", ":")).replace("<", "\\u003c")
    return (
        template.replace("/*__VIEWER_CSS__*/", css)
        .replace("/*__SCENE_DATA__*/", payload)
        .replace("/*__VIEWER_JS__*/", script)
    )


def write_scene_page(path: Path, spz_path: Path, manifest: SceneManifest, frame: ExportFrame) -> int:
    """Write ``scene.html`` around an already written ``scene.spz``.

    Args:
        path: the page to write.
        spz_path: the scene's SPZ file (inlined as is).
        manifest: the scene (its cameras are the page's camera path).
        frame: the exported frame (the SPZ's frame; the poses are moved into it).

    Returns:
        The number of splats the page shows.
    """
    spz = Path(spz_path).read_bytes()
    header = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(spz, 16)  # gzip: only the 16-byte header
    count = struct.unpack_from("<I", header, 8)[0]
    Path(path).write_text(render_page(page_data(spz, manifest, frame)), encoding="utf-8")
    return int(count)
