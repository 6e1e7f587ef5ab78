"""The workers' glue: each spec's stage and inputs, and the nerf worker's handler through the whole loop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gs_worker.consumer import make_spec as gs_spec
from nerf_worker.consumer import make_spec as nerf_spec
from sfm_worker.consumer import make_spec as sfm_spec
from shared.broker import Delivery, MemoryBroker
from shared.consumer import Worker
from shared.messages import StageRequest
from shared.worker_client import WorkerClient
from tests.consumer.worker_api_server import TOKEN, WorkerApiServer


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
def test_nerf_worker_trains_from_sfm_tar_and_uploads_its_three_artifacts(scene_archive: bytes, tmp_path: Path) -> None:
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
        "upsample_at": (0.5,),
        "alpha_mask_at": (),
        "flythrough_seconds": 0.5,
        "flythrough_fps": 4,
        "flythrough_long_side": 32,
        "render_chunk": 1024,
    }
    api = WorkerApiServer(options=tiny).start()
    api.inputs[("job-1", "sfm.tar")] = scene_archive
    try:
        with WorkerClient(api.url, TOKEN) as client:
            worker = Worker(nerf_spec("cpu"), MemoryBroker(), client, worker_id="w", scratch_root=tmp_path / "s")
            delivery = _Acks(StageRequest(job_id="job-1", stage="nerf", attempt=1).to_bytes())
            worker.handle(delivery)
    finally:
        api.stop()
    state = api.stage("job-1", "nerf")
    assert delivery.how == ["ack"]
    result = state.results[0]
    assert result.status == "succeeded", result.error
    assert sorted(result.artifacts) == ["flythrough-nerf.mp4", "report-nerf.json", "tensorf.pt"]
    assert state.artifacts["flythrough-nerf.mp4"][4:8] == b"ftyp"  # an MP4 container
    assert result.metrics.get("worker_seconds", 0) > 0
    assert list((tmp_path / "s").iterdir()) == []
