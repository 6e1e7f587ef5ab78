"""The workers' glue: each spec's stage and inputs, and the nerf worker's handler through the whole loop
(against the real web server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gs_worker.consumer import make_spec as gs_spec
from nerf_worker.consumer import make_spec as nerf_spec
from sfm_worker.consumer import make_spec as sfm_spec
from shared.broker import Delivery, MemoryBroker
from shared.errors import ErrorCode, StageError
from shared.messages import StageRequest
from shared.options import SplatOptions
from shared.settings import Device
from shared.stage_handler import StageJob, training_handler
from shared.worker_api import Lease
from shared.worker_client import WorkerClient
from shared.worker_loop import Worker
from tests.consumer.conftest import TOKEN, LiveApi
from tests.web_server.conftest import FakeWorker


class _Acks(Delivery):
    def __init__(self, body: bytes) -> None:
        super().__init__("nerf", body, "m-1", False)
        self.how: list[str] = []

    def _ack(self) -> None:
        self.how.append("ack")

    def _requeue(self) -> None:
        self.how.append("requeue")

    def _dead_letter(self) -> None:
        self.how.append("dead-letter")


def test_each_worker_fetches_the_inputs_of_its_stage() -> None:
    assert (sfm_spec().stage, sfm_spec().inputs) == ("sfm", ("input",))
    assert (gs_spec("cpu").stage, gs_spec("cpu").inputs) == ("gs", ("sfm.tar",))
    assert (nerf_spec("cpu").stage, nerf_spec("cpu").inputs) == ("nerf", ("sfm.tar",))


@pytest.fixture
def scene_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bytes]:
    from shared.scene_archive import pack_scene
    from shared.synthetic_scene import write_ground_truth_scene

    base = tmp_path_factory.mktemp("scene")
    write_ground_truth_scene(base / "scene", width=64, height=36, n_frames=12, n_points=800)
    yield pack_scene(base / "scene", base / "sfm.tar").read_bytes()


@pytest.mark.slow
def test_nerf_worker_trains_from_sfm_tar_and_uploads_its_three_artifacts(
    live_api: LiveApi, scene_archive: bytes, tmp_path: Path
) -> None:
    tiny = {
        "device": "auto",  # the worker's device setting ("cpu") replaces it
        "iterations": 20,
        "max_long_side": 32,
        "batch_rays": 128,
        "depth_batch_rays": 32,
        "n_voxels_init": 8**3,
        "n_voxels_final": 12**3,
        "density_components": 2,
        "appearance_components": 4,
        "upsample_at": [0.5],
        "alpha_mask_at": [],
        "flythrough_seconds": 0.5,
        "flythrough_fps": 4,
        "flythrough_long_side": 32,
        "render_chunk": 1024,
    }
    job_id = live_api.submit(methods="nerf", options=json.dumps({"nerf": tiny}))
    sfm_files = {"sfm.tar": scene_archive, "report-sfm.json": b"{}"}
    FakeWorker(live_api.server).run_stage(live_api.request(job_id, "sfm"), sfm_files)
    with WorkerClient(live_api.url, TOKEN) as client:
        worker = Worker(nerf_spec("cpu"), MemoryBroker(), client, worker_id="w", scratch_root=tmp_path / "s")
        delivery = _Acks(live_api.request(job_id, "nerf").to_bytes())
        worker.handle(delivery)
    assert delivery.how == ["ack"]
    nerf = live_api.stage(job_id, "nerf")
    assert nerf.status == "succeeded", nerf.last_error
    assert sorted(a.name for a in nerf.artifacts) == ["flythrough-nerf.mp4", "report-nerf.json", "tensorf.pt"]
    assert live_api.artifact(job_id, "flythrough-nerf.mp4")[4:8] == b"ftyp"  # an MP4 container
    assert nerf.metrics.get("worker_seconds", 0) > 0
    assert live_api.job(job_id).status == "succeeded"
    assert list((tmp_path / "s").iterdir()) == []


def _training_job(options: SplatOptions, archive: Path, tmp_path: Path) -> StageJob:
    request = StageRequest(job_id="job-1", stage="gs", attempt=1)
    lease = Lease(lease_id="l", expires_at=datetime.now(UTC), attempt=1, options={}, heartbeat_s=1.0)
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    return StageJob(request, lease, options, {"sfm.tar": archive}, work_dir, tmp_path / "out", lambda f, m: None)


@pytest.mark.parametrize(("requested", "worker", "used"), [("auto", "cpu", "cpu"), ("cuda", "cpu", "cuda")])
def test_training_handler_trains_on_the_unpacked_scene_and_the_worker_device_replaces_only_auto(
    scene_archive: bytes, tmp_path: Path, requested: str, worker: Device, used: str
) -> None:
    archive = tmp_path / "sfm.tar"
    archive.write_bytes(scene_archive)
    seen: dict[str, object] = {}

    def train(scene_dir: Path, out_dir: Path, options: SplatOptions, on_progress: object) -> None:
        seen["scene_json"] = (scene_dir / "scene.json").is_file()
        seen["device"] = options.device
        out_dir.mkdir()
        (out_dir / "model.bin").write_bytes(b"weights")
        (out_dir / "report.json").write_text('{"psnr": 30.5}')

    handler = training_handler(lambda: train, {"model.bin": "model.bin", "report-gs.json": "report.json"}, worker)
    options = SplatOptions.from_preset("preview", device=requested)
    output = handler(_training_job(options, archive, tmp_path))
    assert seen == {"scene_json": True, "device": used}
    assert sorted(output.artifacts) == ["model.bin", "report-gs.json"]
    assert output.metrics == {"psnr": 30.5}


def test_training_handler_fails_with_internal_when_a_promised_file_is_missing(
    scene_archive: bytes, tmp_path: Path
) -> None:
    archive = tmp_path / "sfm.tar"
    archive.write_bytes(scene_archive)
    handler = training_handler(lambda: lambda scene, out, options, on_progress: out.mkdir(), {"x.ply": "x.ply"})
    with pytest.raises(StageError) as failure:
        handler(_training_job(SplatOptions.from_preset("preview"), archive, tmp_path))
    assert failure.value.code is ErrorCode.INTERNAL and "x.ply" in failure.value.message
