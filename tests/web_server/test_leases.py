"""Claims, leases, retries and the reaper: two workers never hold one stage; no job runs forever."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from shared.worker_api import ClaimRequest
from tests.web_server.conftest import FakeWorker, Server
from web_server.orchestration import LeaseConflictError
from web_server.store import utcnow


def _job(server: Server, video: bytes, **fields: str) -> str:
    response = server.submit(video, **fields)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _get(server: Server, job_id: str) -> dict:
    return server.client.get(f"/v1/jobs/{job_id}", headers=server.auth()).json()


def test_second_claim_of_a_live_lease_is_refused_with_409(server: Server, tiny_video: bytes) -> None:
    _job(server, tiny_video)
    (sfm,) = server.broker.requests_for("sfm")
    assert FakeWorker(server, "a").claim(sfm).status_code == 200
    second = FakeWorker(server, "b").claim(sfm)
    assert second.status_code == 409
    assert second.json()["code"] == "ALREADY_CLAIMED"
    assert second.headers["content-type"] == "application/problem+json"


def test_redelivered_message_of_a_stage_whose_lease_is_alive_is_refused_and_the_holder_keeps_it(
    server: Server, tiny_video: bytes
) -> None:
    job_id = _job(server, tiny_video)
    (sfm,) = server.broker.requests_for("sfm")
    first = FakeWorker(server, "a")
    lease_id = first.claim(sfm).json()["lease_id"]
    assert first.heartbeat(sfm, lease_id).status_code == 200
    redelivery = FakeWorker(server, "b").claim(sfm, redelivered=True)  # e.g. after a broker restart
    assert redelivery.status_code == 409 and redelivery.json()["code"] == "ALREADY_CLAIMED"
    assert first.heartbeat(sfm, lease_id).status_code == 200
    assert first.succeed(sfm, lease_id, []).status_code == 200
    stage = _get(server, job_id)["stages"]["sfm"]
    assert (stage["status"], stage["attempt"], stage["worker_id"]) == ("succeeded", 1, "a")


def test_redelivered_message_of_an_expired_lease_is_claimed_as_a_new_attempt(server: Server, tiny_video: bytes) -> None:
    _job(server, tiny_video)
    (sfm,) = server.broker.requests_for("sfm")
    FakeWorker(server, "a").claim(sfm)
    later = utcnow() + timedelta(seconds=server.settings.lease_s + 1)
    claim = ClaimRequest(message_id=sfm.message_id, attempt=1, worker_id="b", redelivered=True)
    lease = server.orchestrator.claim(sfm.job_id, "sfm", claim, later)
    assert lease.attempt == 2


def test_released_lease_queues_the_stage_again_and_the_requeued_message_is_claimed_at_once(
    server: Server, tiny_video: bytes
) -> None:
    job_id = _job(server, tiny_video)
    (sfm,) = server.broker.requests_for("sfm")
    first = FakeWorker(server, "a")
    lease_id = first.claim(sfm).json()["lease_id"]
    assert first.release(sfm, lease_id).status_code == 204
    stage = _get(server, job_id)["stages"]["sfm"]
    assert (stage["status"], stage["attempt"]) == ("queued", 0)
    assert first.heartbeat(sfm, lease_id).json()["code"] == "STALE_LEASE"
    assert first.release(sfm, lease_id).status_code == 409
    again = FakeWorker(server, "b").claim(sfm, redelivered=True)
    assert again.status_code == 200 and again.json()["attempt"] == 1


def test_calls_with_a_stale_lease_are_answered_409(server: Server, worker: FakeWorker, tiny_video: bytes) -> None:
    _job(server, tiny_video)
    (sfm,) = server.broker.requests_for("sfm")
    lease_id = worker.claim(sfm).json()["lease_id"]
    for response in (
        worker.heartbeat(sfm, "not-the-lease"),
        worker.upload(sfm, "not-the-lease", "sfm.tar", b"x"),
        worker.succeed(sfm, "not-the-lease", []),
        worker.fetch_input(sfm, "not-the-lease", "input"),
    ):
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "STALE_LEASE"
    assert worker.heartbeat(sfm, lease_id).status_code == 200


def test_result_after_the_stage_finished_is_refused(server: Server, worker: FakeWorker, tiny_video: bytes) -> None:
    _job(server, tiny_video)
    (sfm,) = server.broker.requests_for("sfm")
    lease_id = worker.run_stage(sfm, {"sfm.tar": b"t"})
    again = worker.succeed(sfm, lease_id, [])
    assert again.status_code == 409 and again.json()["code"] == "STAGE_FINISHED"
    late_claim = FakeWorker(server, "late").claim(sfm)
    assert late_claim.status_code == 409 and late_claim.json()["code"] == "STAGE_FINISHED"


def test_retryable_failure_is_published_again_as_attempt_two(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    job_id = _job(server, tiny_video)
    (sfm,) = server.broker.requests_for("sfm")
    lease_id = worker.claim(sfm).json()["lease_id"]
    ack = worker.fail(sfm, lease_id, "OUT_OF_MEMORY", retryable=True)
    assert ack.json() == {"recorded": True, "retry_scheduled": True}
    first, retry = server.broker.requests_for("sfm")
    assert retry.attempt == 2 and retry.message_id != first.message_id
    stage = _get(server, job_id)["stages"]["sfm"]
    assert stage["status"] == "queued" and stage["error"] is None
    assert worker.claim(retry).json()["attempt"] == 2


def _failed_once_with_a_30_s_backoff(server_factory: Any, video: bytes) -> tuple[Server, str, Any]:
    """A server with a 30 s retry backoff and a job whose first sfm attempt failed (retryable): the retry waits."""
    server = server_factory(retry_backoff_s=30.0)
    worker = FakeWorker(server)
    job_id = _job(server, video)
    (sfm,) = server.broker.requests_for("sfm")
    lease_id = worker.claim(sfm).json()["lease_id"]
    assert worker.fail(sfm, lease_id, "INTERNAL", retryable=True).json()["retry_scheduled"] is True
    return server, job_id, sfm


def test_retry_waits_for_its_backoff_before_it_is_published(server_factory, tiny_video: bytes) -> None:
    server, job_id, _ = _failed_once_with_a_30_s_backoff(server_factory, tiny_video)
    assert len(server.broker.requests_for("sfm")) == 1
    waiting = _get(server, job_id)["stages"]["sfm"]
    assert waiting["next_attempt_at"] is not None
    server.orchestrator.publish_due_retries(utcnow() + timedelta(seconds=10))
    assert len(server.broker.requests_for("sfm")) == 1
    server.orchestrator.publish_due_retries(utcnow() + timedelta(seconds=31))
    assert [r.attempt for r in server.broker.requests_for("sfm")] == [1, 2]


def test_a_stray_copy_of_the_first_message_cannot_start_the_retry_before_its_backoff(
    server_factory, tiny_video: bytes
) -> None:
    server, job_id, sfm = _failed_once_with_a_30_s_backoff(server_factory, tiny_video)
    stray = ClaimRequest(message_id=sfm.message_id, attempt=1, worker_id="b", redelivered=True)
    with pytest.raises(LeaseConflictError) as refused:
        server.orchestrator.claim(job_id, "sfm", stray, utcnow())
    assert refused.value.code == "ALREADY_CLAIMED" and "backoff" in refused.value.detail
    stage = _get(server, job_id)["stages"]["sfm"]
    assert (stage["status"], stage["attempt"]) == ("queued", 1)
    due = utcnow() + timedelta(seconds=31)
    server.orchestrator.publish_due_retries(due)
    retry = server.broker.requests_for("sfm")[-1]
    lease = server.orchestrator.claim(
        job_id, "sfm", ClaimRequest(message_id=retry.message_id, attempt=2, worker_id="b"), due
    )
    assert lease.attempt == 2


def test_permanent_failure_fails_the_job_at_once(server: Server, worker: FakeWorker, tiny_video: bytes) -> None:
    job_id = _job(server, tiny_video, methods="gs,nerf")
    (sfm,) = server.broker.requests_for("sfm")
    lease_id = worker.claim(sfm).json()["lease_id"]
    message = "COLMAP registered 4 of 60 frames: the camera barely moved; walk around the object"
    ack = worker.fail(sfm, lease_id, "TOO_FEW_FRAMES_REGISTERED", retryable=False, message=message)
    assert ack.json()["retry_scheduled"] is False
    job = _get(server, job_id)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "TOO_FEW_FRAMES_REGISTERED" and job["error"]["message"] == message
    assert job["stages"]["gs"]["status"] == "cancelled" and job["stages"]["nerf"]["status"] == "cancelled"
    assert len(server.broker.requests_for("sfm")) == 1
    assert server.broker.requests_for("gs") == []


def test_retryable_failure_on_the_last_attempt_fails_the_job(server_factory, tiny_video: bytes) -> None:
    server = server_factory(max_attempts=2)
    worker = FakeWorker(server)
    job_id = _job(server, tiny_video)
    for attempt in (1, 2):
        request = server.broker.requests_for("sfm")[-1]
        lease = worker.claim(request).json()
        assert lease["attempt"] == attempt
        worker.fail(request, lease["lease_id"], "OUT_OF_MEMORY", retryable=True)
    job = _get(server, job_id)
    assert job["status"] == "failed"
    assert job["stages"]["sfm"]["attempt"] == 2
    assert job["error"]["code"] == "OUT_OF_MEMORY"


def test_reaper_requeues_an_expired_lease_as_a_new_attempt(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    job_id = _job(server, tiny_video)
    (sfm,) = server.broker.requests_for("sfm")
    old_lease = worker.claim(sfm).json()["lease_id"]
    report = server.orchestrator.reap(utcnow() + timedelta(seconds=server.settings.lease_s + 1))
    assert report.requeued == [job_id]
    _, retry = server.broker.requests_for("sfm")
    assert retry.attempt == 2
    stage = _get(server, job_id)["stages"]["sfm"]
    assert stage["status"] == "queued"
    assert "WORKER_LOST" in stage["message"]
    assert worker.heartbeat(sfm, old_lease).json()["code"] == "STALE_LEASE"
    assert FakeWorker(server, "w2").claim(retry).json()["attempt"] == 2


def test_heartbeats_keep_the_lease_from_the_reaper(server: Server, worker: FakeWorker, tiny_video: bytes) -> None:
    _job(server, tiny_video)
    (sfm,) = server.broker.requests_for("sfm")
    lease_id = worker.claim(sfm).json()["lease_id"]
    assert worker.heartbeat(sfm, lease_id).status_code == 200
    report = server.orchestrator.reap(utcnow() + timedelta(seconds=server.settings.lease_s - 5))
    assert report.requeued == [] and len(server.broker.requests_for("sfm")) == 1


def test_reaper_fails_the_stage_with_worker_lost_after_the_attempt_limit(server_factory, tiny_video: bytes) -> None:
    server = server_factory(max_attempts=2)
    job_id = _job(server, tiny_video)
    later = utcnow()
    for _ in range(2):
        request = server.broker.requests_for("sfm")[-1]
        assert FakeWorker(server).claim(request).status_code == 200
        later += timedelta(seconds=server.settings.lease_s + 1)
        server.orchestrator.reap(later)
    job = _get(server, job_id)
    assert job["status"] == "failed"
    assert job["stages"]["sfm"]["error"]["code"] == "WORKER_LOST"
    assert job["stages"]["sfm"]["attempt"] == 2
    assert [r.attempt for r in server.broker.requests_for("sfm")] == [1, 2]


def test_reaper_republishes_a_queued_stage_nobody_claimed(server: Server, tiny_video: bytes) -> None:
    job_id = _job(server, tiny_video)
    server.orchestrator.reap(utcnow() + timedelta(seconds=server.settings.unclaimed_requeue_s - 10))
    assert len(server.broker.requests_for("sfm")) == 1
    report = server.orchestrator.reap(utcnow() + timedelta(seconds=server.settings.unclaimed_requeue_s + 1))
    assert report.published == [job_id]
    first, again = server.broker.requests_for("sfm")
    assert again.attempt == 1 and again.message_id != first.message_id


def test_reaper_publishes_training_stages_left_pending_after_sfm_succeeded(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    job_id = _job(server, tiny_video)
    worker.run_stage(server.broker.requests_for("sfm")[0], {"sfm.tar": b"t"})
    # Simulate a server that crashed between recording sfm and publishing gs.
    server.db.jobs.update_one({"_id": job_id}, {"$set": {"stages.gs.status": "pending"}})
    server.orchestrator.reap(utcnow())
    assert len(server.broker.requests_for("gs")) == 2
    assert _get(server, job_id)["stages"]["gs"]["status"] == "queued"


def test_reaper_queues_the_sfm_stage_of_a_job_inserted_but_never_published(server: Server, tiny_video: bytes) -> None:
    job_id = _job(server, tiny_video)
    # Simulate a server that crashed between inserting the job and queueing its sfm stage.
    server.db.jobs.update_one({"_id": job_id}, {"$set": {"stages.sfm.status": "pending", "stages.sfm.queued_at": None}})
    server.orchestrator.reap(utcnow())  # within the grace: the creating request may still be on its way
    assert len(server.broker.requests_for("sfm")) == 1
    assert _get(server, job_id)["stages"]["sfm"]["status"] == "pending"
    server.orchestrator.reap(utcnow() + timedelta(seconds=61))
    assert len(server.broker.requests_for("sfm")) == 2
    assert _get(server, job_id)["stages"]["sfm"]["status"] == "queued"


def test_worker_api_rejects_artifact_names_outside_the_stage_list(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    _job(server, tiny_video)
    (sfm,) = server.broker.requests_for("sfm")
    lease_id = worker.claim(sfm).json()["lease_id"]
    # A name with an (encoded) slash matches no route: 404. A name outside the sfm stage's list: 422.
    expected = {
        "..%2F..%2Fetc%2Fpasswd": (404, "NOT_FOUND"),
        "scene.ply": (422, "INVALID_ARTIFACT_NAME"),
        "input.mp4": (422, "INVALID_ARTIFACT_NAME"),
        "sfm.tar.bak": (422, "INVALID_ARTIFACT_NAME"),
    }
    for name, (status, code) in expected.items():
        response = worker.upload(sfm, lease_id, name, b"x")
        assert (response.status_code, response.json()["code"]) == (status, code), name
    response = worker.fetch_input(sfm, lease_id, "..%2Finput")
    assert (response.status_code, response.json()["code"]) == (404, "NOT_FOUND")
    assert server.db["files.files"].count_documents({"metadata.stage": "sfm"}) == 0


def test_upload_with_a_wrong_digest_is_refused_and_not_kept(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    _job(server, tiny_video)
    (sfm,) = server.broker.requests_for("sfm")
    lease_id = worker.claim(sfm).json()["lease_id"]
    response = worker.upload(sfm, lease_id, "sfm.tar", b"payload", sha256="0" * 64)
    assert response.status_code == 400 and response.json()["code"] == "DIGEST_MISMATCH"
    assert server.db["files.files"].count_documents({"metadata.name": "sfm.tar"}) == 0
    assert server.db["files.chunks"].count_documents({}) == 1  # only the input video's chunk
    missing = worker.succeed(sfm, lease_id, ["sfm.tar"])
    assert missing.status_code == 422 and missing.json()["code"] == "ARTIFACT_MISSING"


def test_artifact_over_the_size_limit_is_refused_with_413_and_not_kept(server_factory: Any, tiny_video: bytes) -> None:
    server = server_factory(max_artifact_bytes=4096)
    worker = FakeWorker(server)
    _job(server, tiny_video)
    (sfm,) = server.broker.requests_for("sfm")
    lease_id = worker.claim(sfm).json()["lease_id"]
    response = worker.upload(sfm, lease_id, "sfm.tar", b"x" * 10_000)
    assert response.status_code == 413 and response.json()["code"] == "ARTIFACT_TOO_LARGE"
    assert server.db["files.files"].count_documents({"metadata.name": "sfm.tar"}) == 0
    assert worker.upload(sfm, lease_id, "sfm.tar", b"x" * 4096).status_code == 201  # at the limit is fine


def test_racing_claims_grant_exactly_one_lease(server: Server, tiny_video: bytes) -> None:
    _job(server, tiny_video)
    (sfm,) = server.broker.requests_for("sfm")
    request = ClaimRequest(message_id=sfm.message_id, attempt=1, worker_id="w")
    granted: list[str] = []
    refused: list[str] = []
    barrier = threading.Barrier(8)

    def claim(i: int) -> None:
        barrier.wait()
        try:
            lease = server.orchestrator.claim(
                sfm.job_id, "sfm", request.model_copy(update={"worker_id": f"w{i}"}), utcnow()
            )
            granted.append(lease.lease_id)
        except LeaseConflictError as exc:
            refused.append(exc.code)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 1
    assert refused == ["ALREADY_CLAIMED"] * 7
    assert server.db.jobs.find_one({"_id": sfm.job_id})["stages"]["sfm"]["attempt"] == 1


@pytest.mark.slow
def test_background_reaper_requeues_a_silent_worker_without_help(server_factory, tiny_video: bytes) -> None:
    server = server_factory(lease_s=0.5, reaper_interval_s=0.2)
    job_id = _job(server, tiny_video)
    assert FakeWorker(server).claim(server.broker.requests_for("sfm")[0]).status_code == 200
    deadline = time.monotonic() + 10
    while len(server.broker.requests_for("sfm")) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [r.attempt for r in server.broker.requests_for("sfm")] == [1, 2]
    assert _get(server, job_id)["stages"]["sfm"]["status"] == "queued"
