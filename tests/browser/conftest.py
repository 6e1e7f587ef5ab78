"""Fixtures of the browser tests: the built page, headless Chromium, and the local stack serving both.

The page is built with npm when its build is missing or older than its sources; Chromium is
Debian's (``/usr/bin/chromium``, never a Playwright download), rendering WebGL with SwiftShader.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import skip_or_fail

REPO_ROOT = Path(__file__).resolve().parents[2]
FRONTEND = REPO_ROOT / "web_server" / "frontend"
DIST_INDEX = REPO_ROOT / "web_server" / "static" / "dist" / "index.html"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
#: Where the tests also save their screenshots when set (e.g. to refresh docs/screenshot-job.png).
SCREENSHOT_DIR_ENV = "VID2SCENE_SCREENSHOT_DIR"


def _newest_source_mtime() -> float:
    sources = [FRONTEND / "package.json", FRONTEND / "package-lock.json", FRONTEND / "build.mjs"]
    sources += [p for p in (FRONTEND / "src").rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in sources)


def _npm(*args: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        skip_or_fail("npm is not installed: the web page cannot be built")
    run = subprocess.run([npm, *args], cwd=FRONTEND, capture_output=True, text=True, timeout=300, check=False)
    if run.returncode != 0:
        pytest.fail(f"npm {' '.join(args)} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")


@pytest.fixture(scope="session")
def built_page() -> Path:
    """``web_server/static/dist/index.html``, built (``npm ci`` + ``npm run build``) when stale."""
    if DIST_INDEX.is_file() and DIST_INDEX.stat().st_mtime >= _newest_source_mtime():
        return DIST_INDEX
    installed = FRONTEND / "node_modules" / ".package-lock.json"
    if not installed.is_file() or installed.stat().st_mtime < (FRONTEND / "package-lock.json").stat().st_mtime:
        _npm("ci", "--no-audit", "--no-fund", "--loglevel=error")
    _npm("run", "build")
    return DIST_INDEX


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium driven by Playwright (session-wide)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.is_file():
        skip_or_fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def local_stack(built_page: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The local all-in-one stack (API without keys, SfM and splat workers on the CPU), serving the page."""
    from vid2scene.embedded_mongo import secantus_available
    from vid2scene.local import LocalStack

    if not os.environ.get("VID2SCENE_MONGO_URL") and not secantus_available():
        skip_or_fail("no MongoDB-wire server: install the 'local' extra or set VID2SCENE_MONGO_URL")
    with LocalStack(tmp_path_factory.mktemp("stack"), stages=("sfm", "gs"), device="cpu") as stack:
        yield stack


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``$VID2SCENE_SCREENSHOT_DIR`` when set, else a temporary folder."""
    configured = os.environ.get(SCREENSHOT_DIR_ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("screenshots")
