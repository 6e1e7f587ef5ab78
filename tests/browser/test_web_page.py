"""The web page in a real browser, against the local stack: upload a rendered video through the form,
follow the job to ``succeeded``, and look at the result in the 3D viewer and the video player."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(400)]

#: Per-stage overrides that make a job take well under a minute on two CPU cores.
TINY_OPTIONS: dict[str, dict[str, Any]] = {
    "sfm": {"target_frames": 20, "max_long_side": 160, "max_num_features": 1024},
    "gs": {
        "iterations": 30,
        "max_long_side": 96,
        "sh_degree": 0,
        "max_gaussians": 20_000,
        "flythrough_seconds": 1.0,
        "flythrough_fps": 8,
        "flythrough_long_side": 96,
    },
}
#: The viewer's clear colour (``BACKGROUND`` in web_server/frontend/src/viewer.js).
VIEWER_BACKGROUND = np.array([0x10, 0x14, 0x18])
JOB_TIMEOUT_MS = 240_000
DESKTOP = {"width": 1000, "height": 800}
PHONE = {"width": 390, "height": 844}


@dataclass
class FinishedJob:
    """A job uploaded through the page and followed there until it ended."""

    page: Any
    origin: str
    job_id: str
    requests: list[str]
    statuses_seen: set[str] = field(default_factory=set)


def _image(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)  # [H, W, 3]


def _scene_fraction(png: bytes) -> float:
    """The share of pixels that differ clearly from the viewer's background."""
    pixels = _image(png)
    return float((np.abs(pixels - VIEWER_BACKGROUND).max(axis=-1) > 24).mean())


def _changed_fraction(a: bytes, b: bytes) -> float:
    """The share of pixels that differ clearly between two screenshots of the same size."""
    return float((np.abs(_image(a) - _image(b)).max(axis=-1) > 16).mean())


def _settled_canvas(page: Any) -> bytes:
    """A screenshot of the viewer's canvas once it has stopped drawing (damping and sorting settled)."""
    page.wait_for_selector("#viewer-canvas[data-idle=true]", timeout=60_000)
    return page.locator("#viewer-canvas").screenshot()


@pytest.fixture(scope="module")
def rendered_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 frames of 160×90 orbiting the synthetic scene (H.264)."""
    from shared.synthetic_scene import render_capture

    return render_capture(tmp_path_factory.mktemp("video"), width=160, height=90, n_frames=30, fps=24.0, seed=1).video


@pytest.fixture(scope="module")
def finished_job(browser: Any, local_stack: Any, rendered_video: Path, screenshot_dir: Path) -> Iterator[FinishedJob]:
    """Upload ``rendered_video`` through the form and wait, on the job's page, for the job to end."""
    context = browser.new_context(viewport=DESKTOP)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.goto(local_stack.url + "/")
    page.set_input_files("#video", str(rendered_video))
    page.click("summary:has-text('Advanced')")
    page.fill("#options", json.dumps(TINY_OPTIONS))
    page.fill("#job-name", "Synthetic orbit")
    # The stack's gs worker announced that it trains on the CPU: the form preselects preview and says why.
    page.wait_for_function("() => document.querySelector('#preset-hint').textContent.includes('no GPU')")
    assert page.input_value("#preset") == "preview"
    page.click("#upload-submit")
    page.wait_for_url("**/#/jobs/*")
    job_id = page.url.rsplit("/", 1)[-1]
    job = FinishedJob(page=page, origin=local_stack.url, job_id=job_id, requests=requests)
    # Live progress: a stage shows as running on the page while the job runs.
    page.wait_for_selector("#timeline li[data-status=running]", timeout=JOB_TIMEOUT_MS)
    job.statuses_seen.add("running")
    page.screenshot(path=str(screenshot_dir / "job-running.png"))
    page.wait_for_function(
        "() => ['succeeded', 'partial', 'failed', 'cancelled'].includes(document.querySelector('#job-status').textContent)",
        timeout=JOB_TIMEOUT_MS,
    )
    job.statuses_seen.add(page.text_content("#job-status") or "")
    try:
        yield job
    finally:
        context.close()


def test_an_uploaded_video_reaches_succeeded_with_live_stage_progress(
    finished_job: FinishedJob, screenshot_dir: Path
) -> None:
    page = finished_job.page
    assert finished_job.statuses_seen == {"running", "succeeded"}, page.text_content("#timeline")
    assert page.get_attribute("#timeline li[data-stage=sfm]", "data-status") == "succeeded"
    assert page.get_attribute("#timeline li[data-stage=gs]", "data-status") == "succeeded"
    assert "Frames registered" in (page.text_content("#timeline") or "")
    assert "Held-out PSNR" in (page.text_content("#timeline") or "")
    names = set(page.eval_on_selector_all("#downloads a", "links => links.map(a => a.dataset.artifact)"))
    exports = {"scene.ply", "scene.splat", "scene.spz", "scene.compressed.ply", "scene.html"}
    assert {"input.mp4", "sfm.tar", *exports, "flythrough-gs.mp4", "report-gs.json"} <= names
    sizes = page.text_content("#downloads li:has(a[data-artifact='scene.spz'])") or ""
    assert re.search(r"\d+(\.\d+)? ?[kKM]?B", sizes), sizes  # each download lists its size
    # Download links are signed URLs: they work without any header.
    href = page.get_attribute("#downloads a[data-artifact='scene.ply']", "href") or ""
    assert "sig=" in href
    response = page.request.get(href)
    assert response.status == 200 and response.body().startswith(b"ply\n")
    page.wait_for_selector("#viewer-canvas[data-loaded=true]", timeout=60_000)
    assert page.get_attribute("#viewer-progress", "value") == "1"  # the download bar reached its end
    assert "scene.spz" in (page.text_content("#viewer-status") or "")  # the smallest format Spark reads
    page.wait_for_timeout(1500)
    page.screenshot(path=str(screenshot_dir / "job-succeeded.png"))
    # The job list shows it, finished.
    page.goto(finished_job.origin + "/#/")
    item = page.wait_for_selector(f"li[data-job-id='{finished_job.job_id}']")
    assert item.get_attribute("data-status") == "succeeded"
    assert "Synthetic orbit" in (item.text_content() or "")
    page.goto(f"{finished_job.origin}/#/jobs/{finished_job.job_id}")


def test_the_job_page_shows_the_capture_verdict_and_advice_at_the_top(finished_job: FinishedJob) -> None:
    page = finished_job.page
    page.wait_for_selector("#job-capture:not([hidden]) #capture-verdict")
    job = page.evaluate(f"fetch('/v1/jobs/{finished_job.job_id}').then(r => r.json())")
    assert page.text_content("#capture-verdict") == job["capture"]["verdict"]
    advice = page.eval_on_selector_all("#capture-advice li", "items => items.map(li => li.textContent)")
    assert advice == job["capture"]["advice"]
    # At the top: in the job's heading card, above its stages.
    assert page.evaluate("document.querySelector('.area-head').contains(document.querySelector('#job-capture'))")


def test_the_viewer_shows_the_scene_and_changes_when_orbited(finished_job: FinishedJob, screenshot_dir: Path) -> None:
    page = finished_job.page
    page.wait_for_selector("#viewer-canvas[data-loaded=true]", timeout=60_000)
    page.wait_for_selector("#runs-table", timeout=60_000)  # the last card a finished job draws: the layout is final
    canvas = page.locator("#viewer-canvas")
    canvas.scroll_into_view_if_needed()
    before = _settled_canvas(page)
    (screenshot_dir / "viewer-before.png").write_bytes(before)
    assert _scene_fraction(before) > 0.2

    box = canvas.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + box["width"] / 4, y + 20, steps=8)
    page.mouse.up()
    orbited = _settled_canvas(page)
    (screenshot_dir / "viewer-orbited.png").write_bytes(orbited)
    assert _scene_fraction(orbited) > 0.2
    assert _changed_fraction(before, orbited) > 0.1

    # The keyboard orbits too, and R goes back to the home view. The views are compared as camera states
    # (the canvas's data-view): the pictures of one view differ while the background sort lands.
    canvas.press("r")  # the locator focuses the canvas before each key, whatever took focus meanwhile
    home_picture = _settled_canvas(page)
    home = canvas.get_attribute("data-view")
    for _ in range(6):  # 6 × 5°
        canvas.press("ArrowLeft")
    assert _changed_fraction(home_picture, _settled_canvas(page)) > 0.05
    assert canvas.get_attribute("data-view") != home
    canvas.press("r")
    _settled_canvas(page)
    assert home is not None and canvas.get_attribute("data-view") == home


def test_the_flythrough_player_has_a_duration(finished_job: FinishedJob) -> None:
    page = finished_job.page
    selector = "video[data-artifact='flythrough-gs.mp4']"
    # A function, not an expression: the page's Content-Security-Policy forbids eval.
    page.wait_for_function(f'() => document.querySelector("{selector}")?.duration > 0', timeout=30_000)
    duration = page.eval_on_selector(selector, "v => v.duration")
    assert 0.5 <= duration <= 2.0  # TINY_OPTIONS: a 1 s flythrough
    assert "sig=" in (page.get_attribute(selector, "src") or "")


def test_the_page_makes_no_request_outside_its_origin(finished_job: FinishedJob) -> None:
    origin = urlsplit(finished_job.origin)
    assert finished_job.requests, "no requests were recorded"
    outside = []
    for url in finished_job.requests:
        parts = urlsplit(url)
        if parts.scheme in ("blob", "data"):
            continue
        if (parts.scheme, parts.netloc) != (origin.scheme, origin.netloc):
            outside.append(url)
    assert outside == []
    assert any("/artifacts/scene.spz" in u for u in finished_job.requests)  # the viewer's fetch was seen


def test_the_job_page_fits_a_phone_screen(
    browser: Any, local_stack: Any, finished_job: FinishedJob, screenshot_dir: Path
) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(f"{local_stack.url}/#/jobs/{finished_job.job_id}")
        page.wait_for_selector("#viewer-canvas[data-loaded=true]", timeout=60_000)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        box = page.locator("#viewer-canvas").bounding_box()
        assert box is not None and box["width"] >= PHONE["width"] * 0.8
        page.wait_for_timeout(1000)
        page.screenshot(path=str(screenshot_dir / "job-phone.png"))
    finally:
        context.close()


def test_the_finished_job_lists_its_runs_with_held_out_psnr(
    browser: Any, local_stack: Any, finished_job: FinishedJob
) -> None:
    """The Runs card: the uploaded job is the current row, with its splats' held-out PSNR, and the form to train again."""
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        page.goto(f"{local_stack.url}/#/jobs/{finished_job.job_id}")
        row = page.wait_for_selector(f"#runs-table tr.current[data-job='{finished_job.job_id}']", timeout=60_000)
        psnr = row.query_selector("td[data-psnr=gs]")
        assert psnr is not None and re.fullmatch(r"\d+\.\d\d dB", psnr.text_content() or ""), row.inner_text()
        assert page.query_selector("#rerun-form") is not None
    finally:
        context.close()


def test_a_file_that_is_not_a_video_is_refused_with_the_apis_words(
    browser: Any, local_stack: Any, tmp_path: Path
) -> None:
    not_a_video = tmp_path / "holiday.mp4"
    not_a_video.write_text("these are not the frames you are looking for\n" * 50)
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        page.goto(local_stack.url + "/")
        page.set_input_files("#video", str(not_a_video))
        page.click("#upload-submit")
        error = page.wait_for_selector("#upload-error:not([hidden])", timeout=30_000)
        text = error.text_content() or ""
        assert "INVALID_VIDEO" in text
        assert len(text) > len("(INVALID_VIDEO)") + 20  # the API's explanation, not just the code
        assert "#/jobs/" not in page.url
    finally:
        context.close()
