"""Artifact downloads: signed URLs without a header, tampering and expiry refused, names never escape."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.web_server.conftest import FakeWorker, Server
from web_server.signing import signature


@pytest.fixture
def finished_job(server: Server, worker: FakeWorker, tiny_video: bytes) -> dict:
    job = server.submit(tiny_video).json()
    worker.run_stage(server.broker.requests_for("sfm")[0], {"sfm.tar": b"tarball"})
    worker.run_stage(server.broker.requests_for("gs")[0], {"scene.ply": b"ply" * 1000, "flythrough-gs.mp4": b"mp4"})
    return server.client.get(f"/v1/jobs/{job['id']}", headers=server.auth()).json()


def _path_and_query(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


def test_signed_url_downloads_without_the_authorization_header(server: Server, finished_job: dict) -> None:
    ply = next(a for a in finished_job["artifacts"] if a["name"] == "scene.ply")
    response = server.client.get(ply["url"])
    assert response.status_code == 200
    assert response.content == b"ply" * 1000
    video = next(a for a in finished_job["artifacts"] if a["name"] == "flythrough-gs.mp4")
    played = server.client.get(video["url"], headers={"Range": "bytes=0-1"})
    assert played.status_code == 206 and played.content == b"mp"
    assert played.headers["content-type"] == "video/mp4"
    assert played.headers["content-disposition"].startswith("inline")


def test_tampered_or_expired_signatures_are_refused(server: Server, finished_job: dict) -> None:
    ply = next(a for a in finished_job["artifacts"] if a["name"] == "scene.ply")
    path, query = _path_and_query(ply["url"])
    tampered_sig = server.client.get(path, params={**query, "sig": "0" * 64})
    assert tampered_sig.status_code == 403 and tampered_sig.json()["code"] == "INVALID_SIGNATURE"
    longer = server.client.get(path, params={**query, "exp": str(int(query["exp"]) + 3600)})
    assert longer.status_code == 403
    other_name = server.client.get(path.replace("scene.ply", "sfm.tar"), params=query)
    assert other_name.status_code == 403
    expired_exp = 1_000_000
    secret = server.settings.signing_secret
    expired = server.client.get(
        path, params={"exp": str(expired_exp), "sig": signature(secret, finished_job["id"], "scene.ply", expired_exp)}
    )
    assert expired.status_code == 403
    assert server.client.get(path).status_code == 401  # neither a key nor a signature


def test_artifact_names_outside_the_fixed_list_are_404(server: Server, finished_job: dict) -> None:
    base = f"/v1/jobs/{finished_job['id']}/artifacts"
    for name in ("..%2F..%2Fetc%2Fpasswd", "%2e%2e", "scene.PLY", "input", "report.json", "secret.txt"):
        response = server.client.get(f"{base}/{name}", headers=server.auth())
        assert response.status_code == 404, name
        assert response.headers["content-type"] == "application/problem+json"
    assert server.client.get(f"{base}/../../etc/passwd", headers=server.auth()).status_code == 404


def test_artifacts_of_unfinished_stages_are_not_served(server: Server, worker: FakeWorker, tiny_video: bytes) -> None:
    job = server.submit(tiny_video).json()
    (sfm,) = server.broker.requests_for("sfm")
    lease_id = worker.claim(sfm).json()["lease_id"]
    worker.upload(sfm, lease_id, "sfm.tar", b"half done")
    response = server.client.get(f"/v1/jobs/{job['id']}/artifacts/sfm.tar", headers=server.auth())
    assert response.status_code == 404


def test_the_input_video_is_downloadable(server: Server, tiny_video: bytes) -> None:
    job = server.submit(tiny_video).json()
    response = server.client.get(job["artifacts"][0]["url"])
    assert response.status_code == 200 and response.content == tiny_video
    assert response.headers["content-type"] == "video/mp4"


def test_a_signature_with_non_ascii_characters_is_403_not_a_server_error(server: Server, finished_job: dict) -> None:
    ply = next(a for a in finished_job["artifacts"] if a["name"] == "scene.ply")
    path, query = _path_and_query(ply["url"])
    for sig in ("\x95", "é" * 64, query["sig"][:-1] + "ü"):
        response = server.client.get(path, params={"exp": query["exp"], "sig": sig})
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "INVALID_SIGNATURE"


HUGE_POSITION = "9" * 5000  # past int()'s 4,300-digit limit


@pytest.mark.parametrize("signed", [False, True], ids=["api-key", "signed-link"])
def test_a_range_with_thousands_of_digits_is_416_problem_json_not_a_server_error(
    server: Server, finished_job: dict, signed: bool
) -> None:
    ply = next(a for a in finished_job["artifacts"] if a["name"] == "scene.ply")
    url, headers = (ply["url"], {}) if signed else (urlsplit(ply["url"]).path, server.auth())
    for method in ("GET", "HEAD"):
        response = server.client.request(method, url, headers={**headers, "Range": f"bytes={HUGE_POSITION}-"})
        assert response.status_code == 416, (method, response.text)
        assert response.headers["content-range"] == "bytes */3000"
        if method == "GET":
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "RANGE_NOT_SATISFIABLE"
    # A huge last position only means "to the end"; a huge suffix means "the whole file".
    to_end = server.client.get(url, headers={**headers, "Range": f"bytes=2990-{HUGE_POSITION}"})
    assert to_end.status_code == 206 and to_end.content == (b"ply" * 1000)[2990:]
    suffix = server.client.get(url, headers={**headers, "Range": f"bytes=-{HUGE_POSITION}"})
    assert suffix.status_code == 206 and suffix.content == b"ply" * 1000


@pytest.mark.parametrize("signed", [False, True], ids=["api-key", "signed-link"])
def test_head_on_an_artifact_answers_its_headers_without_a_body(
    server: Server, finished_job: dict, signed: bool
) -> None:
    ply = next(a for a in finished_job["artifacts"] if a["name"] == "scene.ply")
    url, headers = (ply["url"], {}) if signed else (urlsplit(ply["url"]).path, server.auth())
    head = server.client.head(url, headers=headers)
    assert head.status_code == 200, head.text
    assert head.content == b""
    assert head.headers["content-length"] == "3000"
    assert head.headers["etag"] == f'"{ply["sha256"]}"'
    assert head.headers["accept-ranges"] == "bytes"
    assert head.headers["content-type"] == ply["content_type"]
    get = server.client.get(url, headers=headers)
    assert {k: get.headers[k] for k in ("content-length", "etag", "content-type")} == {
        k: head.headers[k] for k in ("content-length", "etag", "content-type")
    }
    partial = server.client.head(url, headers={**headers, "Range": "bytes=10-19"})
    assert partial.status_code == 206 and partial.content == b""
    assert partial.headers["content-length"] == "10" and partial.headers["content-range"] == "bytes 10-19/3000"


def test_head_without_a_key_or_signature_is_401(server: Server, finished_job: dict) -> None:
    ply = next(a for a in finished_job["artifacts"] if a["name"] == "scene.ply")
    assert server.client.head(urlsplit(ply["url"]).path).status_code == 401


def test_artifact_urls_use_the_configured_public_url_whatever_the_host_header(
    server_factory: Any, tiny_video: bytes
) -> None:
    server = server_factory(public_url="https://scenes.example.org/")
    job = server.submit(tiny_video).json()
    assert job["artifacts"][0]["url"].startswith(f"https://scenes.example.org/v1/jobs/{job['id']}/artifacts/input.mp4?")
    for headers in ({"Host": "evil.example"}, {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}):
        read = server.client.get(f"/v1/jobs/{job['id']}", headers={**server.auth(), **headers}).json()
        urls = [a["url"] for a in read["artifacts"]]
        assert urls and all(u.startswith("https://scenes.example.org/v1/jobs/") for u in urls), urls
        listed = server.client.get("/v1/jobs", headers={**server.auth(), **headers}).json()["items"][0]
        assert all(a["url"].startswith("https://scenes.example.org/") for a in listed["artifacts"])
    posted = server.client.post(
        "/v1/jobs",
        headers={**server.auth(), "Host": "evil.example"},
        files={"video": ("clip.mp4", tiny_video, "video/mp4")},
    )
    assert posted.status_code == 202
    assert "evil" not in posted.headers["location"] and "evil" not in posted.text


def test_without_a_public_url_links_point_at_the_bound_address_not_the_host_header(
    server_factory: Any, tiny_video: bytes
) -> None:
    server = server_factory(host="0.0.0.0", port=8123)
    job_id = server.submit(tiny_video).json()["id"]
    read = server.client.get(f"/v1/jobs/{job_id}", headers={**server.auth(), "Host": "evil.example"}).json()
    assert read["artifacts"][0]["url"].startswith(f"http://127.0.0.1:8123/v1/jobs/{job_id}/artifacts/input.mp4?")
