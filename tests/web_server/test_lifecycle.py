"""A job driven through the worker API from upload to downloadable artifacts."""

from __future__ import annotations

import hashlib

from tests.web_server.conftest import FakeWorker, Server

PLY = b"ply\nformat binary_little_endian 1.0\nend_header\n" + bytes(range(256)) * 40
SPLAT = bytes(range(32)) * 100


def test_job_runs_sfm_then_gs_and_succeeds_with_downloadable_artifacts(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    response = server.submit(tiny_video, methods="gs", preset="preview", name="garden")
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued"
    assert job["queue_position"] == 1
    assert job["stages"]["sfm"]["status"] == "queued"
    assert job["stages"]["gs"]["status"] == "pending"
    assert job["video"]["container"] == "mp4"
    assert [a["name"] for a in job["artifacts"]] == ["input.mp4"]

    (sfm,) = server.broker.requests_for("sfm")
    assert sfm.job_id == job["id"] and sfm.attempt == 1
    assert sfm.options["seed"] == 0  # resolved preset options travel with the request

    lease = worker.claim(sfm).json()
    assert lease["attempt"] == 1
    assert lease["options"] == sfm.options
    video = worker.fetch_input(sfm, lease["lease_id"], "input")
    assert video.status_code == 200 and video.content == tiny_video
    beat = worker.heartbeat(sfm, lease["lease_id"], 0.4, "registering frames")
    assert beat.status_code == 200 and beat.json()["cancelled"] is False
    running = server.client.get(f"/v1/jobs/{job['id']}", headers=server.auth()).json()
    assert running["status"] == "running"
    assert running["stages"]["sfm"]["progress"] == 0.4
    assert running["stages"]["sfm"]["message"] == "registering frames"
    assert running["stages"]["sfm"]["worker_id"] == "worker-1"

    assert worker.upload(sfm, lease["lease_id"], "sfm.tar", b"tar bytes").status_code == 201
    done = worker.succeed(sfm, lease["lease_id"], ["sfm.tar"], metrics={"frames_registered": 12})
    assert done.json() == {"recorded": True, "retry_scheduled": False}

    (gs,) = server.broker.requests_for("gs")
    gs_lease = worker.claim(gs).json()["lease_id"]
    assert worker.fetch_input(gs, gs_lease, "sfm.tar").content == b"tar bytes"
    for name, data in {"scene.ply": PLY, "scene.splat": SPLAT}.items():
        assert worker.upload(gs, gs_lease, name, data).status_code == 201
    assert worker.succeed(gs, gs_lease, ["scene.ply", "scene.splat"], metrics={"gaussians": 100}).status_code == 200

    final = server.client.get(f"/v1/jobs/{job['id']}", headers=server.auth()).json()
    assert final["status"] == "succeeded"
    assert final["finished_at"] is not None
    assert final["stages"]["sfm"]["metrics"] == {"frames_registered": 12}
    assert final["stages"]["gs"]["status"] == "succeeded" and final["stages"]["gs"]["progress"] == 1.0
    names = {a["name"]: a for a in final["artifacts"]}
    assert set(names) == {"input.mp4", "sfm.tar", "scene.ply", "scene.splat"}
    assert names["scene.ply"]["sha256"] == hashlib.sha256(PLY).hexdigest()
    assert names["scene.ply"]["size"] == len(PLY)

    url = f"/v1/jobs/{job['id']}/artifacts/scene.ply"
    whole = server.client.get(url, headers=server.auth())
    assert whole.status_code == 200 and whole.content == PLY
    assert whole.headers["content-length"] == str(len(PLY))
    assert whole.headers["etag"] == f'"{hashlib.sha256(PLY).hexdigest()}"'
    assert 'filename="scene.ply"' in whole.headers["content-disposition"]
    part = server.client.get(url, headers={**server.auth(), "Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == PLY[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(PLY)}"
    suffix = server.client.get(url, headers={**server.auth(), "Range": "bytes=-10"})
    assert suffix.status_code == 206 and suffix.content == PLY[-10:]
    cached = server.client.get(url, headers={**server.auth(), "If-None-Match": whole.headers["etag"]})
    assert cached.status_code == 304
    beyond = server.client.get(url, headers={**server.auth(), "Range": f"bytes={len(PLY)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-type"] == "application/problem+json"


def test_nerf_and_gs_run_in_parallel_after_sfm_and_one_failing_gives_partial(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    job = server.submit(tiny_video, methods="gs,nerf").json()
    worker.run_stage(server.broker.requests_for("sfm")[0], {"sfm.tar": b"t"})
    (gs,) = server.broker.requests_for("gs")
    (nerf,) = server.broker.requests_for("nerf")
    gs_lease = worker.claim(gs).json()["lease_id"]
    nerf_lease = FakeWorker(server, "worker-2").claim(nerf).json()["lease_id"]
    failed = worker.fail(gs, gs_lease, "TRAINING_DIVERGED", retryable=False, message="loss became NaN")
    assert failed.json()["retry_scheduled"] is False
    middle = server.client.get(f"/v1/jobs/{job['id']}", headers=server.auth()).json()
    assert middle["status"] == "running"
    assert middle["stages"]["nerf"]["status"] == "running"  # the sibling keeps going
    assert worker.heartbeat(nerf, nerf_lease).json()["cancelled"] is False
    assert worker.upload(nerf, nerf_lease, "tensorf.pt", b"weights").status_code == 201
    assert worker.succeed(nerf, nerf_lease, ["tensorf.pt"]).status_code == 200
    final = server.client.get(f"/v1/jobs/{job['id']}", headers=server.auth()).json()
    assert final["status"] == "partial"
    assert final["error"]["code"] == "TRAINING_DIVERGED"
    assert final["stages"]["gs"]["error"] == {
        "code": "TRAINING_DIVERGED",
        "message": "loss became NaN",
        "retryable": False,
    }
    assert "tensorf.pt" in {a["name"] for a in final["artifacts"]}
