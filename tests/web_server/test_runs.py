"""``POST /v1/jobs/{id}/runs`` and ``GET /v1/jobs/{id}/runs``: runs on a finished job's input and SfM result.

The test acts as the workers through the worker API (the in-process broker records the requests).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.web_server.conftest import FakeWorker, Server
from web_server.janitor import Janitor
from web_server.store import utcnow

SFM_TAR = b"the scene archive"
PLY = b"ply\nformat binary_little_endian 1.0\nend_header\n" + bytes(range(256)) * 4


def _finished_job(server: Server, worker: FakeWorker, video: bytes, **fields: str) -> dict[str, Any]:
    """Upload ``video`` and drive sfm and gs to success; returns the job as the API shows it."""
    response = server.submit(video, methods="gs", preset="preview", **fields)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    worker.run_stage(server.broker.requests_for("sfm")[-1], {"sfm.tar": SFM_TAR})
    worker.run_stage(server.broker.requests_for("gs")[-1], {"scene.ply": PLY})
    job = server.client.get(f"/v1/jobs/{job_id}", headers=server.auth()).json()
    assert job["status"] == "succeeded"
    return job


def _rerun(server: Server, job_id: str, owner: str = "alice", **body: Any) -> Any:
    return server.client.post(f"/v1/jobs/{job_id}/runs", json=body, headers=server.auth(owner))


def test_run_reuses_the_input_and_sfm_result_and_queues_only_training(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    source = _finished_job(server, worker, tiny_video, name="garden")
    sfm_requests = len(server.broker.requests_for("sfm"))

    response = _rerun(server, source["id"], methods=["nerf"], preset="standard")
    assert response.status_code == 202, response.text
    run = response.json()
    assert response.headers["Location"] == f"/v1/jobs/{run['id']}"
    assert run["id"] != source["id"]
    assert (run["from_job"], run["root_job"], run["sfm_reused_from"]) == (source["id"],) * 3
    assert run["name"] == "garden" and run["preset"] == "standard" and run["methods"] == ["nerf"]
    assert run["stages"]["sfm"]["status"] == "succeeded"
    assert run["stages"]["nerf"]["status"] == "queued"
    assert "gs" not in run["stages"]
    assert len(server.broker.requests_for("sfm")) == sfm_requests  # no second SfM

    (nerf,) = server.broker.requests_for("nerf")
    assert nerf.job_id == run["id"]
    assert nerf.options["iterations"] > 0  # the standard preset's, resolved
    lease = worker.claim(nerf).json()["lease_id"]
    assert worker.fetch_input(nerf, lease, "sfm.tar").content == SFM_TAR  # the source's scene
    assert worker.upload(nerf, lease, "tensorf.pt", b"weights").status_code == 201
    assert worker.succeed(nerf, lease, ["tensorf.pt"], metrics={"heldout_psnr": 21.5}).status_code == 200

    done = server.client.get(f"/v1/jobs/{run['id']}", headers=server.auth()).json()
    assert done["status"] == "succeeded"
    assert {a["name"] for a in done["artifacts"]} == {"input.mp4", "sfm.tar", "tensorf.pt"}
    weights = server.client.get(f"/v1/jobs/{run['id']}/artifacts/tensorf.pt", headers=server.auth())
    assert weights.content == b"weights"
    ply = server.client.get(f"/v1/jobs/{source['id']}/artifacts/scene.ply", headers=server.auth())
    assert ply.content == PLY  # the source's result stays as it was

    for member in (source["id"], run["id"]):  # the family, from either member
        runs = server.client.get(f"/v1/jobs/{member}/runs", headers=server.auth())
        assert runs.status_code == 200
        body = runs.json()
        assert body["root_job"] == source["id"]
        assert [j["id"] for j in body["items"]] == [source["id"], run["id"]]
        assert body["items"][1]["stages"]["nerf"]["metrics"] == {"heldout_psnr": 21.5}


def test_changed_sfm_options_run_sfm_again_from_the_stored_input(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    source = _finished_job(server, worker, tiny_video)
    response = _rerun(server, source["id"], methods=["gs"], options={"sfm": {"target_frames": 40}})
    assert response.status_code == 202, response.text
    run = response.json()
    assert run["sfm_reused_from"] is None
    assert run["stages"]["sfm"]["status"] == "queued"
    sfm = server.broker.requests_for("sfm")[-1]
    assert sfm.job_id == run["id"] and sfm.options["target_frames"] == 40
    lease = worker.claim(sfm).json()["lease_id"]
    assert worker.fetch_input(sfm, lease, "input").content == tiny_video  # no re-upload

    # Naming the source's own SfM values changes nothing: the result is reused.
    same = source_sfm_options(server, source["id"])
    again = _rerun(server, source["id"], methods=["gs"], options={"sfm": {"target_frames": same["target_frames"]}})
    assert again.status_code == 202
    assert again.json()["sfm_reused_from"] == source["id"]


def source_sfm_options(server: Server, job_id: str) -> dict[str, Any]:
    return server.db["jobs"].find_one({"_id": job_id})["stages"]["sfm"]["options"]


def test_run_of_a_running_job_is_409_job_not_finished(server: Server, worker: FakeWorker, tiny_video: bytes) -> None:
    job = server.submit(tiny_video, methods="gs").json()
    response = _rerun(server, job["id"], methods=["nerf"])
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "JOB_NOT_FINISHED"


def test_run_of_a_job_whose_sfm_failed_is_409_no_sfm_result(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    job = server.submit(tiny_video, methods="gs").json()
    sfm = server.broker.requests_for("sfm")[-1]
    lease = worker.claim(sfm).json()["lease_id"]
    assert worker.fail(sfm, lease, "SFM_FAILED", retryable=False).status_code == 200
    response = _rerun(server, job["id"], methods=["gs"])
    assert (response.status_code, response.json()["code"]) == (409, "NO_SFM_RESULT")
    assert server.db["jobs"].count_documents({"from_job": job["id"]}) == 0


def test_another_owners_job_is_404_and_nothing_is_created(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    source = _finished_job(server, worker, tiny_video)
    assert _rerun(server, source["id"], owner="bob", methods=["gs"]).status_code == 404
    assert server.client.get(f"/v1/jobs/{source['id']}/runs", headers=server.auth("bob")).status_code == 404
    assert _rerun(server, "no-such-job", methods=["gs"]).status_code == 404
    assert server.db["jobs"].count_documents({"from_job": source["id"]}) == 0


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        ({}, "VALIDATION_ERROR", "methods"),
        ({"methods": []}, "VALIDATION_ERROR", "methods"),
        ({"methods": ["sfm"]}, "VALIDATION_ERROR", "methods"),
        ({"methods": ["gs"], "preset": "ultra"}, "VALIDATION_ERROR", "preset"),
        ({"methods": ["gs"], "colour": "blue"}, "VALIDATION_ERROR", "colour"),
        ({"methods": ["gs"], "options": {"nerf": {"iterations": 10}}}, "INVALID_OPTIONS", "nerf"),
        ({"methods": ["gs"], "options": {"gs": {"iterations": -1}}}, "INVALID_OPTIONS", "iterations"),
        ({"methods": ["gs"], "options": {"sfm": {"no_such_option": 1}}}, "INVALID_OPTIONS", "no_such_option"),
    ],
)
def test_bad_run_requests_are_422_problems(
    server: Server, worker: FakeWorker, tiny_video: bytes, body: dict[str, Any], code: str, needle: str
) -> None:
    source = _finished_job(server, worker, tiny_video)
    response = _rerun(server, source["id"], **body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    assert needle in str(problem)
    assert server.db["jobs"].count_documents({"from_job": source["id"]}) == 0


def test_the_run_limit_counts_the_whole_family(server_factory: Any, tiny_video: bytes) -> None:
    server = server_factory(max_runs_per_job=2)
    worker = FakeWorker(server)
    source = _finished_job(server, worker, tiny_video)
    first = _rerun(server, source["id"], methods=["gs"]).json()
    (gs,) = [r for r in server.broker.requests_for("gs") if r.job_id == first["id"]]
    worker.run_stage(gs, {"scene.ply": PLY})
    second = _rerun(server, first["id"], methods=["gs"])  # a run of a run belongs to the same family
    assert second.status_code == 202
    assert second.json()["root_job"] == source["id"] and second.json()["from_job"] == first["id"]
    refused = _rerun(server, source["id"], methods=["nerf"])
    assert (refused.status_code, refused.json()["code"]) == (409, "RUN_LIMIT_REACHED")
    server.client.delete(f"/v1/jobs/{first['id']}", headers=server.auth())
    assert _rerun(server, source["id"], methods=["nerf"]).status_code == 202  # deleting a run frees its place


def test_idempotency_key_returns_the_first_run_and_refuses_another_request(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    source = _finished_job(server, worker, tiny_video)
    headers = {**server.auth(), "Idempotency-Key": "rerun-1"}
    url = f"/v1/jobs/{source['id']}/runs"
    first = server.client.post(url, json={"methods": ["nerf"]}, headers=headers)
    replay = server.client.post(url, json={"methods": ["nerf"]}, headers=headers)
    assert first.status_code == replay.status_code == 202
    assert replay.json()["id"] == first.json()["id"]
    other = server.client.post(url, json={"methods": ["gs"]}, headers=headers)
    assert (other.status_code, other.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert server.db["jobs"].count_documents({"from_job": source["id"]}) == 1


def test_deleting_the_source_keeps_the_files_its_run_uses(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    source = _finished_job(server, worker, tiny_video)
    run = _rerun(server, source["id"], methods=["gs"]).json()
    assert server.client.delete(f"/v1/jobs/{source['id']}", headers=server.auth()).status_code == 204
    # The janitor, even long after, keeps what the run references.
    store = server.client.app.state.store
    Janitor(store, server.settings.data_dir, min_age_s=0).sweep(utcnow() + timedelta(days=1))
    for name in ("input.mp4", "sfm.tar"):
        got = server.client.get(f"/v1/jobs/{run['id']}/artifacts/{name}", headers=server.auth())
        assert got.status_code == 200, name
    assert server.client.get(f"/v1/jobs/{run['id']}/artifacts/sfm.tar", headers=server.auth()).content == SFM_TAR
    (gs,) = [r for r in server.broker.requests_for("gs") if r.job_id == run["id"]]
    lease = worker.claim(gs).json()["lease_id"]
    assert worker.fetch_input(gs, lease, "sfm.tar").content == SFM_TAR
    # Once the run is deleted too, nothing references them and the janitor removes them.
    assert server.client.delete(f"/v1/jobs/{run['id']}", headers=server.auth()).status_code == 204
    Janitor(store, server.settings.data_dir, min_age_s=0).sweep(utcnow() + timedelta(days=1))
    assert store.file_docs.count_documents({"metadata.job_id": source["id"]}) == 0
