"""What the server shows without an API key: /docs from its own assets, /openapi.json, /metrics."""

from __future__ import annotations

import re
from typing import Any

from tests.web_server.conftest import Server

METRICS_TOKEN = "metrics-token-for-tests-0123456789"


def test_docs_page_loads_swagger_ui_from_this_server_only(server: Server) -> None:
    page = server.client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self';" in csp and "connect-src 'self'" in csp
    urls = re.findall(r'(?:src|href|data-openapi)="([^"]*)"', page.text)
    assert len(urls) == 5, urls
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert "<script>" not in page.text  # no inline script: the policy would refuse it
    for url in urls:
        asset = server.client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0
    bundle = server.client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith("text/javascript") and b"SwaggerUIBundle" in bundle.content
    assert server.client.get("/docs/assets/swagger-ui.css").headers["content-type"].startswith("text/css")
    init = server.client.get("/docs/assets/init.js").text
    assert "validatorUrl: null" in init and "http" not in init
    assert server.client.get("/docs/assets/..%2F..%2Fapp.py").status_code == 404
    assert server.client.get("/docs/assets/redoc.standalone.js").status_code == 404


def test_openapi_lists_public_routes_only_unless_the_internal_api_is_asked_for(server_factory: Any) -> None:
    public = server_factory().client.get("/openapi.json").json()["paths"]
    assert "/v1/jobs/{job_id}" in public and "/v1/jobs/{job_id}/artifacts/{name}" in public
    assert not [p for p in public if p.startswith("/internal")]
    everything = server_factory(openapi_internal=True).client.get("/openapi.json").json()["paths"]
    assert "/internal/v1/jobs/{job_id}/stages/{stage}/claim" in everything


def test_metrics_need_the_metrics_token_when_one_is_set(server_factory: Any) -> None:
    server = server_factory(metrics_token=METRICS_TOKEN)
    for headers in ({}, server.auth(), {"Authorization": "Bearer wrong"}):
        refused = server.client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["code"] == "UNAUTHORIZED" and refused.headers["www-authenticate"] == "Bearer"
    allowed = server.client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert allowed.status_code == 200 and "vid2scene_jobs" in allowed.text


def test_metrics_are_open_when_no_metrics_token_is_set(server: Server) -> None:
    assert server.client.get("/metrics").status_code == 200
