"""Fixtures of the command-line tests: the local stack's API without workers, a small video, and a
stand-in worker that drives a job's stages through the real worker API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.messages import StageName
from shared.worker_api import ClaimRequest, StageErrorBody, StageResult
from shared.worker_client import WorkerClient
from tests.conftest import skip_or_fail
from vid2scene.embedded_mongo import secantus_available
from vid2scene.local import LocalStack


@pytest.fixture(scope="module")
def api_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The local stack without workers: jobs stay queued until cancelled or driven by :func:`finish_stage`."""
    if not secantus_available():
        skip_or_fail("the 'local' extra (secantusdb) is not installed")
    with LocalStack(tmp_path_factory.mktemp("api-only"), stages=()) as stack:
        yield stack


@pytest.fixture(scope="module")
def small_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An 8-frame 64×48 H.264 MP4 (passes the upload check; never reconstructed here)."""
    from shared.synthetic_scene import render_capture

    return render_capture(tmp_path_factory.mktemp("video"), width=64, height=48, n_frames=8, fps=8.0).video


def finish_stage(
    stack: LocalStack,
    job_id: str,
    stage: StageName,
    files: dict[str, bytes] | None = None,
    *,
    error_code: str | None = None,
) -> None:
    """Play a worker through the real worker API: claim the queued ``stage``, upload ``files`` as its
    artifacts and report it succeeded (or failed, permanently, with ``error_code``)."""
    assert stack.settings is not None
    scratch = stack.data_dir / "fake-worker" / uuid.uuid4().hex
    scratch.mkdir(parents=True)
    with WorkerClient(stack.url, stack.settings.worker_token, retry_for_s=5.0) as worker:
        claim = ClaimRequest(message_id=uuid.uuid4().hex, attempt=1, worker_id="test-worker")
        lease = worker.claim(job_id, stage, claim)
        for name, content in (files or {}).items():
            path = scratch / name
            path.write_bytes(content)
            worker.upload_artifact(job_id, stage, name, path, lease.lease_id)
        if error_code is None:
            result = StageResult(lease_id=lease.lease_id, status="succeeded", artifacts=list(files or {}))
        else:
            error = StageErrorBody(code=error_code, message=f"{stage} failed in a test", retryable=False)
            result = StageResult(lease_id=lease.lease_id, status="failed", error=error)
        worker.report_result(job_id, stage, result)
