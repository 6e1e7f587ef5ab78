"""Cancel stops a job (workers learn it at their next heartbeat); delete removes files and record."""

from __future__ import annotations

from tests.web_server.conftest import FakeWorker, Server


def test_cancel_marks_running_stages_cancelled_and_the_worker_learns_it(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    job_id = server.submit(tiny_video, methods="gs,nerf").json()["id"]
    (sfm,) = server.broker.requests_for("sfm")
    lease_id = worker.claim(sfm).json()["lease_id"]
    response = server.client.post(f"/v1/jobs/{job_id}/cancel", headers=server.auth())
    assert response.status_code == 200
    job = response.json()
    assert job["status"] == "cancelled"
    assert {s["status"] for s in job["stages"].values()} == {"cancelled"}
    assert job["stages"]["sfm"]["error"]["code"] == "CANCELLED"
    beat = worker.heartbeat(sfm, lease_id)
    assert beat.status_code == 200 and beat.json()["cancelled"] is True
    late = worker.succeed(sfm, lease_id, [])
    assert late.status_code == 409 and late.json()["code"] == "CANCELLED"
    assert worker.upload(sfm, lease_id, "sfm.tar", b"x").json()["code"] == "CANCELLED"
    # the record and the uploaded video stay
    assert server.client.get(job["artifacts"][0]["url"]).status_code == 200


def test_cancelling_a_cancelled_job_again_is_409_job_finished_and_changes_nothing(
    server: Server, tiny_video: bytes
) -> None:
    job_id = server.submit(tiny_video).json()["id"]
    first = server.client.post(f"/v1/jobs/{job_id}/cancel", headers=server.auth())
    assert first.status_code == 200 and first.json()["status"] == "cancelled"
    again = server.client.post(f"/v1/jobs/{job_id}/cancel", headers=server.auth())
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["code"] == "JOB_FINISHED" and "cancelled" in again.json()["detail"]
    after = server.client.get(f"/v1/jobs/{job_id}", headers=server.auth()).json()
    assert after["updated_at"] == first.json()["updated_at"]


def test_cancel_of_a_finished_job_is_409(server: Server, worker: FakeWorker, tiny_video: bytes) -> None:
    job_id = server.submit(tiny_video).json()["id"]
    worker.run_stage(server.broker.requests_for("sfm")[0], {"sfm.tar": b"t"})
    worker.run_stage(server.broker.requests_for("gs")[0], {"scene.ply": b"p"})
    response = server.client.post(f"/v1/jobs/{job_id}/cancel", headers=server.auth())
    assert response.status_code == 409 and response.json()["code"] == "JOB_FINISHED"


def test_a_claim_for_a_cancelled_job_is_refused(server: Server, worker: FakeWorker, tiny_video: bytes) -> None:
    job_id = server.submit(tiny_video).json()["id"]
    server.client.post(f"/v1/jobs/{job_id}/cancel", headers=server.auth())
    response = worker.claim(server.broker.requests_for("sfm")[0])
    assert response.status_code == 409 and response.json()["code"] == "CANCELLED"


def test_delete_removes_the_files_and_the_record(server: Server, worker: FakeWorker, tiny_video: bytes) -> None:
    job = server.submit(tiny_video).json()
    (sfm,) = server.broker.requests_for("sfm")
    lease_id = worker.claim(sfm).json()["lease_id"]
    worker.upload(sfm, lease_id, "sfm.tar", b"x")
    assert server.db["files.files"].count_documents({"metadata.job_id": job["id"]}) == 2
    response = server.client.delete(f"/v1/jobs/{job['id']}", headers=server.auth())
    assert response.status_code == 204
    assert server.db.jobs.count_documents({"_id": job["id"]}) == 0
    assert server.db["files.files"].count_documents({"metadata.job_id": job["id"]}) == 0
    assert server.db["files.chunks"].count_documents({}) == 0
    assert server.client.get(f"/v1/jobs/{job['id']}", headers=server.auth()).status_code == 404
    assert server.client.get(job["artifacts"][0]["url"]).status_code == 404
    gone = worker.heartbeat(sfm, lease_id)
    assert gone.status_code == 409 and gone.json()["code"] == "JOB_GONE"
