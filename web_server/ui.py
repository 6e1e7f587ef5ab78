"""The web page at ``/``: the front end built from ``web_server/frontend`` into ``web_server/static/dist``.

``index.html`` is answered at ``/`` (revalidated on every visit, with a strict Content-Security-Policy:
the page loads nothing from another origin); the hashed, immutable bundles at ``/assets/<name>``,
pre-compressed with gzip when the build wrote a ``.gz`` twin and the browser accepts it. When the
front end is not built, ``/`` answers a short page that says how to build it; the API and the CLI do
not need it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from web_server.problems import ApiError

router = APIRouter(include_in_schema=False)

#: Where ``npm run build`` in ``web_server/frontend`` writes the page.
DIST_DIR: Final[Path] = Path(__file__).resolve().parent / "static" / "dist"

#: Media types of the files the build produces; anything else under ``assets/`` is not served.
ASSET_TYPES: Final[dict[str, str]] = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")

#: Everything the page needs comes from this server. Spark (the splat renderer) runs its sorting in
#: a blob: worker and compiles WebAssembly; videos and splat files come from signed /v1 URLs.
CONTENT_SECURITY_POLICY: Final[str] = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "worker-src 'self' blob:",
        "connect-src 'self' blob: data:",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        "style-src 'self' 'unsafe-inline'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
_PAGE_HEADERS: Final[dict[str, str]] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
IMMUTABLE: Final[str] = "public, max-age=31536000, immutable"

NOT_BUILT_PAGE: Final[str] = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>vid2scene: web page not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5">
<h1>vid2scene</h1>
<p>The API is running, but the web page has not been built.</p>
<p>Build it once (Node.js 20 or newer), then reload this page:</p>
<pre style="background: #eee; padding: 0.75rem; overflow-x: auto">cd web_server/frontend
npm ci
npm run build</pre>
<p>The API works without it: see <a href="/docs">/docs</a>, or use the <code>vid2scene</code> command.</p>
</body></html>
"""


def _index_path() -> Path:
    return DIST_DIR / "index.html"


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
def index(request: Request) -> Response:
    """The page (``index.html`` of the build), or instructions to build it when it is absent."""
    path = _index_path()
    if not path.is_file():
        return HTMLResponse(NOT_BUILT_PAGE, headers={"Cache-Control": "no-store", **_PAGE_HEADERS})
    body = path.read_bytes()
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"Cache-Control": "no-cache", "ETag": etag, **_PAGE_HEADERS}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return HTMLResponse(body, headers=headers)


@router.api_route("/assets/{name}", methods=["GET", "HEAD"])
def asset(name: str, request: Request) -> Response:
    """A built bundle (hashed name, cached for a year); 404 for anything the build did not write."""
    suffix = Path(name).suffix
    if not _ASSET_NAME.match(name) or suffix not in ASSET_TYPES:
        raise ApiError(404, "NOT_FOUND", "No such file.")
    path = DIST_DIR / "assets" / name
    if not path.is_file():
        raise ApiError(404, "NOT_FOUND", "No such file.")
    headers = {"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff", "Vary": "Accept-Encoding"}
    gz = path.with_name(name + ".gz")
    if "gzip" in request.headers.get("accept-encoding", "") and gz.is_file():
        return FileResponse(gz, media_type=ASSET_TYPES[suffix], headers={**headers, "Content-Encoding": "gzip"})
    return FileResponse(path, media_type=ASSET_TYPES[suffix], headers=headers)
