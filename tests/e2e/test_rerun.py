"""A run end to end: a finished job trained again with another method through ``vid2scene rerun``, on the
real stack (web server and workers as processes, RabbitMQ, a MongoDB-wire server), without a second SfM.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pymongo
import pytest

from tests.e2e.conftest import training_stages
from tests.e2e.stack import REPO_ROOT, TINY_OPTIONS, ServiceStack, tiny_options
from vid2scene.client import ServerError

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.timeout(600)]

JOB_TIMEOUT_S = 300.0


def _files(stack: ServiceStack, job_id: str) -> list[str]:
    """The names of the files stored for ``job_id`` in GridFS (what its own stages uploaded)."""
    client: pymongo.MongoClient = pymongo.MongoClient(stack.mongo_url)
    try:
        docs = client[stack.db_name]["files.files"].find({"metadata.job_id": job_id}, {"metadata.name": 1})
        return sorted(d["metadata"]["name"] for d in docs)
    finally:
        client.close()


def test_a_finished_gs_job_reruns_with_another_method_without_a_second_sfm(
    service: ServiceStack, e2e_video: Path, tmp_path: Path
) -> None:
    (second,) = training_stages(("nerf",))  # the run trains the other method (an error when it is not installed)
    with service.client() as client:
        job = client.submit(e2e_video, methods=["gs"], preset="preview", options=tiny_options(), name="rerun-me")
        # While the job runs, a run of it is refused with 409 JOB_NOT_FINISHED.
        service.wait_for(client, job.id, lambda j: j.status == "running" or j.done, timeout_s=JOB_TIMEOUT_S)
        with pytest.raises(ServerError) as refused:
            client.rerun(job.id, methods=[second])
        assert (refused.value.status, refused.value.code) == (409, "JOB_NOT_FINISHED")
        source = client.wait(job.id, timeout_s=JOB_TIMEOUT_S, poll_s=0.5)
        assert source.status == "succeeded", f"{source.failure_message()}\n{service.logs()}"
        assert not any(j.from_job == job.id for j in client.list(limit=100).jobs)

    options = {second: TINY_OPTIONS[second]}
    done = subprocess.run(
        [sys.executable, "-m", "vid2scene", "rerun", job.id, "--methods", second, "--preset", "standard",
         "--options", json.dumps(options), "--wait", "-q",
         "--server", service.url, "--api-key", service.api_key or ""],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=JOB_TIMEOUT_S + 60,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{service.logs()}"
    run_id = done.stdout.strip().splitlines()[-1]
    assert f"started run {run_id} of job {job.id} (SfM reused from job {job.id})" in done.stderr

    with service.client() as client:
        run = client.get(run_id)
        assert run.status == "succeeded" and run.methods == [second] and run.preset == "standard"
        assert (run.from_job, run.root_job, run.sfm_reused_from) == (job.id, job.id, job.id)
        sfm = run.stage("sfm")
        assert sfm is not None and sfm.status == "succeeded"
        assert sfm.attempt == 0 and sfm.worker_id is None  # no SfM worker touched the run
        assert sfm.metrics == source.stage("sfm").metrics
        # No second SfM result was stored: the run's own files are its training stage's only.
        own = _files(service, run_id)
        assert own and "sfm.tar" not in own and "report-sfm.json" not in own
        assert _files(service, job.id).count("sfm.tar") == 1
        by_name = {a.name: a for a in run.artifacts}
        assert "sfm.tar" in by_name and f"flythrough-{second}.mp4" in by_name

        # Both results are downloadable, each under its own job.
        first = {p.name: p for p in client.download_all(job.id, tmp_path / "first")}
        rerun = {p.name: p for p in client.download_all(run_id, tmp_path / "rerun")}
        assert first["scene.ply"].read_bytes().startswith(b"ply\n")
        assert rerun[f"flythrough-{second}.mp4"].stat().st_size > 0
        assert first["sfm.tar"].read_bytes() == rerun["sfm.tar"].read_bytes()
        assert "scene.ply" not in rerun and rerun["tensorf.pt"].stat().st_size > 0

        # Side by side: the family with each run's held-out PSNR.
        family = client.runs(run_id)
        assert family.root_job == job.id
        assert [j.id for j in family.jobs] == [job.id, run_id]
        psnr = [j.stage(m).metrics.get("heldout_psnr") for j, m in zip(family.jobs, ["gs", second], strict=True)]
        assert all(isinstance(v, float) and v > 5 for v in psnr), psnr

    # Another owner sees neither the job nor its runs, and cannot start one.
    other = service.create_api_key("someone-else")
    headers = {"Authorization": f"Bearer {other}"}
    for method, path in (("POST", f"/v1/jobs/{job.id}/runs"), ("GET", f"/v1/jobs/{job.id}/runs")):
        answer = httpx.request(method, f"{service.url}{path}", headers=headers, json={"methods": [second]})
        assert answer.status_code == 404, (method, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert httpx.get(f"{service.url}/v1/jobs/{run_id}/artifacts/sfm.tar", headers=headers).status_code == 404
