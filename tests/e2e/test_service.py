"""The service end to end: the web server and the workers as separate processes, real RabbitMQ and a
real MongoDB-wire server, a rendered video uploaded over HTTP, and faults injected into the processes.

The tests share one stack (session fixture ``service``) and run in file order; each leaves the
stack serving (a killed worker is replaced, a killed server restarted).
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import av
import httpx
import pytest

from tests.e2e.conftest import training_stages
from tests.e2e.stack import ServiceStack, tiny_options
from vid2scene.client import JobView, ServerError

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.timeout(600)]

JOB_TIMEOUT_S = 300.0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from ``/proc/<pid>/stat``."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _worker_of(stack: ServiceStack, job: JobView, stage: str):
    worker_id = job.stage(stage).worker_id
    matches = [w for w in stack.workers if w.name == worker_id and w.alive]
    assert matches, f"no live process is worker {worker_id!r}"
    return matches[0]


def _stage_running(stage: str, min_progress: float = 0.0):
    def check(job: JobView) -> bool:
        s = job.stage(stage)
        if job.done:
            raise AssertionError(f"job ended before {stage} was seen running: {job.failure_message()}")
        return s is not None and s.status == "running" and s.progress > min_progress

    return check


def test_poison_message_is_dead_lettered_and_the_worker_keeps_serving(service: ServiceStack) -> None:
    from shared.broker import make_broker

    broker = make_broker(service.amqp_url, prefix=service.queue_prefix)
    try:
        broker.declare()
        broker.publish("sfm", b"{this is not a StageRequest", message_id="poison-1")
        deadline = time.monotonic() + 30
        dead: list[bytes] = []
        while not dead and time.monotonic() < deadline:
            dead = broker.drain_dead_letters("sfm")
            time.sleep(0.3)
    finally:
        broker.close()
    assert dead == [b"{this is not a StageRequest"], service.logs()
    time.sleep(1.0)
    assert all(w.alive for w in service.workers), service.logs()


def test_no_api_key_is_refused_and_no_job_is_created(service: ServiceStack, e2e_video: Path) -> None:
    with service.client() as client:
        before = len(client.list(limit=100).jobs)
    anonymous = httpx.post(
        f"{service.url}/v1/jobs", files={"video": ("v.mp4", e2e_video.read_bytes())}, data={"methods": "gs"}
    )
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    with service.client() as client:
        assert len(client.list(limit=100).jobs) == before


def test_non_video_upload_is_refused_with_invalid_video(service: ServiceStack, tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_bytes(b"these are not the frames you are looking for" * 100)
    with service.client() as client, pytest.raises(ServerError) as info:
        client.submit(fake, preset="preview")
    assert (info.value.status, info.value.code) == (422, "INVALID_VIDEO")


def test_cancelled_running_job_stops_its_worker(service: ServiceStack, e2e_video: Path) -> None:
    with service.client() as client:
        job = client.submit(e2e_video, preset="preview", options=tiny_options(iterations=20_000), name="cancel-me")
        running = service.wait_for(client, job.id, _stage_running("gs", 0.01), timeout_s=JOB_TIMEOUT_S)
        worker = _worker_of(service, running, "gs")
        client.cancel(job.id)
        final = service.wait_for(client, job.id, lambda j: j.done, timeout_s=60)
        assert final.status == "cancelled"
        assert final.stage("gs").status == "cancelled"
        # The worker notices at its next heartbeat and stops computing: it goes idle.
        time.sleep(4.0)
        before = _cpu_seconds(worker.pid)
        time.sleep(3.0)
        busy = _cpu_seconds(worker.pid) - before
        assert busy < 1.0, f"gs worker still busy after cancel ({busy:.1f} CPU s in 3 s)\n{service.logs()}"
        assert worker.alive


def test_uploaded_video_becomes_downloadable_splats_and_flythroughs(
    service: ServiceStack, e2e_video: Path, tmp_path: Path
) -> None:
    methods = training_stages()
    with service.client() as client:
        job = client.submit(e2e_video, methods=methods, preset="preview", options=tiny_options(methods), name="e2e")
        assert job.status in ("queued", "running")  # a fast worker may claim sfm before the 202 is sent
        final = client.wait(job.id, timeout_s=JOB_TIMEOUT_S, poll_s=0.5)
        assert final.status == "succeeded", f"{final.failure_message()}\n{service.logs()}"
        assert [s.name for s in final.stages] == ["sfm", *methods]
        assert all(s.status == "succeeded" and s.attempt == 1 for s in final.stages)
        assert final.stage("sfm").metrics.get("frames_registered", 0) >= 10
        names = {a.name for a in final.artifacts}
        expected = {"sfm.tar", "scene.ply", "scene.splat", "flythrough-gs.mp4"}
        if "nerf" in methods:
            expected |= {"flythrough-nerf.mp4", "tensorf.pt"}
        assert expected <= names

        paths = {p.name: p for p in client.download_all(job.id, tmp_path)}
    ply = paths["scene.ply"].read_bytes()
    assert ply.startswith(b"ply\nformat binary_little_endian 1.0\n")
    n_ply = int(ply.split(b"element vertex ")[1].split(b"\n")[0])
    splat = paths["scene.splat"].read_bytes()
    assert len(splat) == 32 * n_ply > 0
    assert all(abs(v) < 1e3 for v in struct.unpack_from("<3f", splat, 0))
    for name in [n for n in paths if n.startswith("flythrough-")]:
        with av.open(str(paths[name])) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert sum(1 for _ in container.decode(stream)) >= 4

    # A Range request is answered 206 with exactly the asked bytes.
    headers = {"Authorization": f"Bearer {service.api_key}", "Range": "bytes=10-109"}
    ranged = httpx.get(f"{service.url}/v1/jobs/{job.id}/artifacts/scene.ply", headers=headers)
    assert ranged.status_code == 206
    assert ranged.content == ply[10:110]
    assert ranged.headers["content-range"] == f"bytes 10-109/{len(ply)}"
    # The signed URL works without the header; the bare path does not.
    signed = next(a.url for a in final.artifacts if a.name == "scene.splat")
    assert signed is not None
    assert httpx.get(httpx.URL(service.url).join(signed)).content == splat
    assert httpx.get(f"{service.url}/v1/jobs/{job.id}/artifacts/scene.splat").status_code == 401


def test_worker_killed_mid_stage_is_replaced_and_the_job_succeeds_on_attempt_2(
    service: ServiceStack, e2e_video: Path
) -> None:
    with service.client() as client:
        job = client.submit(e2e_video, preset="preview", options=tiny_options(iterations=150), name="kill-worker")
        running = service.wait_for(client, job.id, _stage_running("gs", 0.05), timeout_s=JOB_TIMEOUT_S)
        victim = _worker_of(service, running, "gs")
        service.start_worker("gs")  # a spare waits on the queue
        victim.kill()
        final = client.wait(job.id, timeout_s=JOB_TIMEOUT_S, poll_s=0.5)
    assert final.status == "succeeded", f"{final.failure_message()}\n{service.logs()}"
    gs = final.stage("gs")
    assert gs.attempt == 2
    assert gs.worker_id != victim.name
    assert {"scene.ply", "scene.splat", "flythrough-gs.mp4"} <= {a.name for a in final.artifacts}


def test_web_server_killed_mid_job_loses_nothing(service: ServiceStack, e2e_video: Path) -> None:
    with service.client() as client:
        job = client.submit(e2e_video, preset="preview", options=tiny_options(iterations=120), name="kill-server")
        service.wait_for(client, job.id, _stage_running("gs", 0.05), timeout_s=JOB_TIMEOUT_S)
        assert service.server is not None
        service.server.kill()
        time.sleep(2.0)
        service.start_server()
        final = client.wait(job.id, timeout_s=JOB_TIMEOUT_S, poll_s=0.5)
    assert final.status == "succeeded", f"{final.failure_message()}\n{service.logs()}"
    assert {"sfm.tar", "scene.ply", "scene.splat", "flythrough-gs.mp4"} <= {a.name for a in final.artifacts}
