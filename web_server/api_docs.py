"""``/docs``: Swagger UI served from this server, so reading the API docs sends no request off the origin.

FastAPI's own ``/docs`` page loads Swagger UI from a CDN. This one serves the Swagger UI 5 files that
the ``fastapi-offline`` package ships (``swagger-ui-bundle.js``, ``swagger-ui.css``) at
``/docs/assets/<name>``, starts it with a script of ours (no inline script), and answers the page with
a Content-Security-Policy that confines every fetch to this origin. Swagger UI's online spec
validator is switched off (``validatorUrl: null``). Works without the front-end build.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from web_server.problems import ApiError

router = APIRouter(include_in_schema=False)

#: The package whose ``static`` folder holds the Swagger UI build.
SWAGGER_PACKAGE: Final[str] = "fastapi_offline"
#: The files served under ``/docs/assets/``: name → media type. Nothing else is.
ASSETS: Final[dict[str, str]] = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
#: Starts Swagger UI on the server's own schema; served as ``/docs/assets/init.js``.
INIT_SCRIPT: Final[str] = """window.ui = SwaggerUIBundle({
  url: document.currentScript.dataset.openapi,
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
});
"""
CONTENT_SECURITY_POLICY: Final[str] = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
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
    "Cache-Control": "no-cache",
}
_ASSET_CACHE = "public, max-age=3600"


def swagger_static_dir() -> Path:
    """The folder of the installed Swagger UI files."""
    return Path(str(importlib.resources.files(SWAGGER_PACKAGE) / "static"))


def docs_page(root: str, openapi_url: str) -> str:
    """The HTML of ``/docs``; every URL in it is a path on this server under ``root``."""
    assets = f"{root}/docs/assets"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vid2scene API</title>
<link rel="icon" type="image/png" href="{assets}/favicon.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/init.js" data-openapi="{root}{openapi_url}"></script>
</body>
</html>
"""


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    """Swagger UI for ``/openapi.json``, with every asset from this server."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    openapi_url = request.app.openapi_url or "/openapi.json"
    return HTMLResponse(docs_page(root, openapi_url), headers=_PAGE_HEADERS)


@router.get("/docs/assets/{name}")
def docs_asset(name: str) -> Response:
    """One Swagger UI file, or our start-up script; 404 for any other name."""
    if name == "init.js":
        return Response(INIT_SCRIPT, media_type=ASSETS["swagger-ui-bundle.js"], headers={"Cache-Control": _ASSET_CACHE})
    if name not in ASSETS:
        raise ApiError(404, "NOT_FOUND", f"No such documentation asset {name[:64]!r}.")
    return FileResponse(swagger_static_dir() / name, media_type=ASSETS[name], headers={"Cache-Control": _ASSET_CACHE})
