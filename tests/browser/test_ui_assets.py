"""``web_server.ui``: the built page and its bundles are served with the right types and caching,
and a server without a built page still answers ``/`` with how to build it (no browser needed)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from web_server import ui
from web_server.problems import install_problem_handlers

INDEX = '<!doctype html><html lang="en"><script type="module" src="/assets/app-ABC123.js"></script></html>'
SCRIPT = "console.log('vid2scene');" * 100


def _client(dist: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr(ui, "DIST_DIR", dist)
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(ui.router)
    return TestClient(app)


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    """A built page as ``npm run build`` lays it out."""
    (tmp_path / "assets").mkdir(parents=True)
    (tmp_path / "index.html").write_text(INDEX)
    (tmp_path / "assets" / "app-ABC123.js").write_text(SCRIPT)
    (tmp_path / "assets" / "app-ABC123.js.gz").write_bytes(gzip.compress(SCRIPT.encode()))
    (tmp_path / "assets" / "app-ABC123.css").write_text("body { color: red }")
    return tmp_path


def test_root_without_a_built_page_explains_how_to_build_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client(tmp_path / "missing", monkeypatch)
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "npm run build" in response.text and "web_server/frontend" in response.text
    assert response.headers["cache-control"] == "no-store"


def test_root_serves_the_built_index_revalidated_with_an_etag_and_a_same_origin_policy(
    dist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(dist, monkeypatch)
    response = client.get("/")
    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["cache-control"] == "no-cache"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    again = client.get("/", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert client.head("/").status_code == 200


def test_assets_have_their_media_type_and_are_cached_for_a_year(dist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client(dist, monkeypatch)
    css = client.get("/assets/app-ABC123.css")
    assert css.status_code == 200
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert css.headers["cache-control"] == ui.IMMUTABLE
    plain = client.get("/assets/app-ABC123.js", headers={"Accept-Encoding": "identity"})
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "content-encoding" not in plain.headers and plain.text == SCRIPT


def test_a_browser_accepting_gzip_gets_the_precompressed_bundle(dist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client(dist, monkeypatch)
    response = client.get("/assets/app-ABC123.js", headers={"Accept-Encoding": "gzip, br"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.text == SCRIPT  # the client decoded it
    assert int(response.headers["content-length"]) < len(SCRIPT)


@pytest.mark.parametrize("name", ["missing-1.js", "..%2Findex.html", "app-ABC123.js.gz", "secret.py", ".hidden.js"])
def test_anything_the_build_did_not_write_is_not_found(name: str, dist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (dist / "assets" / "secret.py").write_text("x = 1")
    client = _client(dist, monkeypatch)
    response = client.get(f"/assets/{name}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
