"""The gs stage's export files as artifacts: accepted from the gs worker, served as downloads, never rendered."""

from __future__ import annotations

from tests.web_server.conftest import FakeWorker, Server

HTML = b"<!doctype html><script>document.title = 'ran'</script>"
EXPORTS = {"scene.spz": b"\x1f\x8b spz", "scene.compressed.ply": b"ply\ncompressed", "scene.html": HTML}


def test_the_gs_worker_uploads_every_export_format_and_scene_html_downloads_as_a_sandboxed_attachment(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    job = server.submit(tiny_video, methods="gs", preset="preview").json()
    (sfm,) = server.broker.requests_for("sfm")
    sfm_lease = worker.claim(sfm).json()["lease_id"]
    assert worker.upload(sfm, sfm_lease, "sfm.tar", b"tar").status_code == 201
    assert worker.succeed(sfm, sfm_lease, ["sfm.tar"], metrics={}).status_code == 200
    (gs,) = server.broker.requests_for("gs")
    lease = worker.claim(gs).json()["lease_id"]
    for name, data in EXPORTS.items():
        assert worker.upload(gs, lease, name, data).status_code == 201, name
    assert worker.succeed(gs, lease, list(EXPORTS), metrics={}).status_code == 200

    final = server.client.get(f"/v1/jobs/{job['id']}", headers=server.auth()).json()
    assert set(EXPORTS) <= {a["name"] for a in final["artifacts"]}
    page = server.client.get(f"/v1/jobs/{job['id']}/artifacts/scene.html", headers=server.auth())
    assert page.status_code == 200 and page.content == HTML
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-disposition"] == 'attachment; filename="scene.html"'
    assert page.headers["content-security-policy"] == "sandbox"
    assert page.headers["x-content-type-options"] == "nosniff"
    spz = server.client.get(f"/v1/jobs/{job['id']}/artifacts/scene.spz", headers=server.auth())
    assert spz.content == EXPORTS["scene.spz"] and spz.headers["content-type"] == "application/octet-stream"


def test_the_nerf_worker_may_not_upload_a_gs_export(server: Server, worker: FakeWorker, tiny_video: bytes) -> None:
    server.submit(tiny_video, methods="nerf", preset="preview")
    (sfm,) = server.broker.requests_for("sfm")
    sfm_lease = worker.claim(sfm).json()["lease_id"]
    worker.upload(sfm, sfm_lease, "sfm.tar", b"tar")
    worker.succeed(sfm, sfm_lease, ["sfm.tar"], metrics={})
    (nerf,) = server.broker.requests_for("nerf")
    lease = worker.claim(nerf).json()["lease_id"]
    refused = worker.upload(nerf, lease, "scene.html", HTML)
    assert refused.status_code == 422 and refused.json()["code"] == "INVALID_ARTIFACT_NAME"
