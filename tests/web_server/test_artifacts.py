"""Artifact downloads: signed URLs without a header, tampering and expiry refused, names never escape."""

from __future__ import annotations

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
