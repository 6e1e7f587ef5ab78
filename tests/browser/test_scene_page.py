"""scene.html opened from disk in Chromium with the network blocked: it shows the scene, orbits, plays the path."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gs_worker.export_all import HTML_FILE, write_exports
from gs_worker.init import init_splats
from gs_worker.scene_frame import export_frame
from shared.manifest import read_points_ply
from shared.synthetic_scene import write_ground_truth_scene

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

BACKGROUND = np.array([0x10, 0x14, 0x18])


@pytest.fixture(scope="module")
def scene_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scene.html of the synthetic scene, one opaque splat per SfM point."""
    root = tmp_path_factory.mktemp("scene-page")
    manifest = write_ground_truth_scene(
        root / "scene", width=64, height=36, n_frames=16, n_points=2000, backdrop_points=800
    )
    xyz, rgb = read_points_ply(root / "scene" / "points.ply")
    splats = init_splats(xyz, rgb, sh_degree=1, init_opacity=0.9)
    out = root / "out"
    out.mkdir()
    write_exports(out, {k: np.asarray(v, np.float32) for k, v in splats.items()}, manifest, export_frame(manifest, xyz))
    return out / HTML_FILE


def canvas_pixels(page: Any) -> np.ndarray:
    png = page.locator("#scene-canvas").screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def scene_share(pixels: np.ndarray) -> float:
    """Share of the pixels that differ from the page background."""
    return float((np.abs(pixels - BACKGROUND).max(axis=2) > 12).mean())


def canvas_data(page: Any, name: str) -> str | None:
    return page.get_attribute("#scene-canvas", f"data-{name}")


def wait_until(page: Any, done: Any, timeout_s: float = 60.0) -> None:
    """Poll from Python: the page's CSP forbids the eval that ``wait_for_function`` needs."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "the page did not get there in time"
        page.wait_for_timeout(100)


def wait_for_frames(page: Any, count: int) -> None:
    wait_until(page, lambda: int(canvas_data(page, "frames") or 0) >= count)


def test_the_page_shows_the_scene_offline_orbits_with_a_drag_and_plays_the_camera_path(
    browser: Any, scene_page: Path
) -> None:
    requests: list[str] = []
    context = browser.new_context(viewport={"width": 480, "height": 320}, offline=True)
    page = context.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.route(
        "**/*", lambda route: route.abort() if not route.request.url.startswith("file://") else route.continue_()
    )
    page.goto(scene_page.as_uri())
    page.wait_for_selector("#scene-canvas[data-loaded], #scene-canvas[data-error]", timeout=60_000)
    assert canvas_data(page, "error") is None
    wait_for_frames(page, 1)
    first = canvas_pixels(page)
    assert scene_share(first) > 0.2
    assert "splats" in page.inner_text("#scene-status")

    frames = int(canvas_data(page, "frames") or 0)
    page.mouse.move(240, 160)
    page.mouse.down()
    page.mouse.move(330, 175, steps=6)
    page.mouse.up()
    wait_for_frames(page, frames + 1)
    orbited = canvas_pixels(page)
    assert np.abs(orbited - first).mean() > 3.0

    page.click("#play-path")
    wait_until(page, lambda: canvas_data(page, "path") == "done", timeout_s=120.0)
    played = canvas_pixels(page)
    assert np.abs(played - orbited).mean() > 3.0
    assert scene_share(played) > 0.2

    assert requests == [scene_page.as_uri()]  # the page itself, and nothing else
    context.close()


def test_the_page_keeps_the_scene_data_from_closing_its_script_and_forbids_requests(scene_page: Path) -> None:
    html = scene_page.read_text(encoding="utf-8")
    assert html.count("</script>") == 2  # the data block and the viewer: nothing inside them closes early
    assert "default-src 'none'" in html
    assert "http://" not in html and "https://" not in html
