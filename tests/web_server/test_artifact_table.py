"""The server accepts and serves exactly the artifacts of ``shared/artifacts.py``, each with its stage and media type."""

from __future__ import annotations

from shared.artifacts import ARTIFACTS, REPORT_FILE, stage_artifacts
from shared.messages import STAGES
from tests.web_server.conftest import FakeWorker, Server


def test_every_table_artifact_is_accepted_from_its_stage_only_and_served_with_its_media_type(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    job = server.submit(tiny_video, methods="gs,nerf", preset="preview").json()
    for stage in STAGES:
        (request,) = server.broker.requests_for(stage)
        lease_id = worker.claim(request).json()["lease_id"]
        for other in (a for a in ARTIFACTS.values() if a.stage != stage):
            refused = worker.upload(request, lease_id, other.name, b"not this stage's")
            assert refused.status_code == 422 and refused.json()["code"] == "INVALID_ARTIFACT_NAME", other.name
        own = [a.name for a in stage_artifacts(stage)]
        for name in own:
            assert worker.upload(request, lease_id, name, f"{name} bytes".encode()).status_code == 201, name
        assert worker.succeed(request, lease_id, own).status_code == 200

    final = server.client.get(f"/v1/jobs/{job['id']}", headers=server.auth()).json()
    assert final["status"] == "succeeded"
    listed = {a["name"]: a for a in final["artifacts"]}
    assert set(listed) == {*ARTIFACTS, "input.mp4"}
    for artifact in ARTIFACTS.values():
        assert (listed[artifact.name]["stage"], listed[artifact.name]["content_type"]) == (
            artifact.stage,
            artifact.media_type,
        )
        served = server.client.get(f"/v1/jobs/{job['id']}/artifacts/{artifact.name}", headers=server.auth())
        assert served.status_code == 200 and served.content == f"{artifact.name} bytes".encode()
        assert served.headers["content-type"].split(";")[0] == artifact.media_type, artifact.name


def test_names_outside_the_table_are_not_served_even_as_a_stage_file_name(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    job = server.submit(tiny_video, methods="gs", preset="preview").json()
    (sfm,) = server.broker.requests_for("sfm")
    worker.run_stage(sfm, {a.name: b"{}" for a in stage_artifacts("sfm")})
    for name in (REPORT_FILE, "scene", "flythrough.mp4", "report-sfm.json.bak"):  # file names, not artifact names
        response = server.client.get(f"/v1/jobs/{job['id']}/artifacts/{name}", headers=server.auth())
        assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND", name
