"""`vid2scene wait` shows the server's estimate: per running stage and for the whole job."""

from __future__ import annotations

import io

from vid2scene.client import JobView
from vid2scene.progress_view import StageBars


def _job(status: str, eta: float | None, sfm_eta: float | None) -> JobView:
    return JobView.model_validate(
        {
            "id": "j1",
            "status": status,
            "eta_seconds": eta,
            "stages": {
                "sfm": {"status": "running", "progress": 0.4, "message": "matching", "eta_seconds": sfm_eta},
                "gs": {"status": "pending", "progress": 0.0, "eta_seconds": 100.0},
            },
        }
    )


def test_bars_show_the_stage_and_job_estimates() -> None:
    stream = io.StringIO()
    with StageBars(stream) as bars:
        bars.update(_job("running", 290.0, 170.0))
    out = stream.getvalue()
    assert "about 3 min left · matching" in out
    assert "job: about 5 min left (estimate)" in out
    assert out.count("about 2 min left") == 0  # a pending stage shows no time left of its own


def test_a_server_without_eta_shows_no_estimate() -> None:
    stream = io.StringIO()
    with StageBars(stream) as bars:
        bars.update(_job("running", None, None))
    out = stream.getvalue()
    assert "left" not in out and "job:" not in out
    assert "matching" in out
