"""The client commands against the real web server (in-process, no workers): submit, status, list, cancel, delete."""

from __future__ import annotations

from pathlib import Path

import pytest

from vid2scene.cli import main
from vid2scene.client import ServerError, Vid2SceneClient
from vid2scene.local import LocalStack

pytestmark = pytest.mark.service


def test_submit_prints_the_job_id_and_status_shows_the_queued_stages(
    api_only: LocalStack, small_video: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--server", api_only.url, "-q"]
    assert main(["submit", str(small_video), "--methods", "gs", "--preset", "preview", "--name", "cli", *argv]) == 0
    job_id = capsys.readouterr().out.strip()
    assert main(["status", job_id, *argv]) == 0
    shown = capsys.readouterr().out
    assert f"job {job_id} (cli): queued" in shown
    assert "sfm" in shown and "gs" in shown
    assert main(["jobs", *argv]) == 0
    assert job_id in capsys.readouterr().out
    assert main(["cancel", job_id, *argv]) == 0
    assert "cancelled" in capsys.readouterr().err
    assert main(["wait", job_id, *argv]) == 3  # a cancelled job ends the wait with exit code 3


def test_unknown_job_is_a_not_found_error_with_exit_code_1(
    api_only: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "nosuchjob", "--server", api_only.url]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err


def test_invalid_options_are_refused_before_a_job_exists(api_only: LocalStack, small_video: Path) -> None:
    with Vid2SceneClient(api_only.url) as client:
        before = len(client.list(limit=100).jobs)
        with pytest.raises(ServerError) as info:
            client.submit(small_video, options={"gs": {"iterations": -5}})
        assert info.value.status == 422
        assert len(client.list(limit=100).jobs) == before


def test_deleted_job_is_gone(api_only: LocalStack, small_video: Path) -> None:
    with Vid2SceneClient(api_only.url) as client:
        job = client.submit(small_video, preset="preview")
        assert client.get(job.id).status == "queued"
        client.delete(job.id)
        with pytest.raises(ServerError) as info:
            client.get(job.id)
    assert info.value.status == 404


def test_local_mode_download_links_point_at_the_loopback_address_the_api_binds(
    api_only: LocalStack, small_video: Path
) -> None:
    import httpx

    with Vid2SceneClient(api_only.url) as client:
        job = client.submit(small_video, methods=("gs",), preset="preview")
    response = httpx.get(f"{api_only.url}/v1/jobs/{job.id}", headers={"Host": "evil.example"}, timeout=30)
    urls = [a["url"] for a in response.json()["artifacts"]]
    assert urls and all(u.startswith(f"{api_only.url}/v1/jobs/{job.id}/artifacts/") for u in urls), urls
    assert api_only.url.startswith("http://127.0.0.1:")


def test_submit_sends_the_webhook_url(
    api_only: LocalStack, small_video: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The local stack has no API keys, so a job with a webhook is refused for want of a key to sign with."""
    argv = ["--server", api_only.url, "-q", "--webhook-url", "https://93.184.216.34/hooks/vid2scene"]
    assert main(["submit", str(small_video), "--methods", "gs", *argv]) == 1
    err = capsys.readouterr().err
    assert "VALIDATION_ERROR" in err and "webhook_url" in err
