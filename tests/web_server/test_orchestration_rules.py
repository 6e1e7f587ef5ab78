"""The pure rules of the job state machine."""

from __future__ import annotations

import pytest

from web_server.orchestration import aggregate_status, next_stages, retry_delay_s, should_retry


@pytest.mark.parametrize(
    ("stages", "claimed", "expected"),
    [
        ({"sfm": "queued", "gs": "pending"}, False, "queued"),
        ({"sfm": "queued", "gs": "pending"}, True, "running"),  # a retry after a claim
        ({"sfm": "running", "gs": "pending"}, True, "running"),
        ({"sfm": "failed", "gs": "pending"}, True, "failed"),
        ({"sfm": "succeeded", "gs": "succeeded"}, True, "succeeded"),
        ({"sfm": "succeeded", "gs": "succeeded", "nerf": "failed"}, True, "partial"),
        ({"sfm": "succeeded", "gs": "failed", "nerf": "running"}, True, "running"),
        ({"sfm": "succeeded", "gs": "failed", "nerf": "failed"}, True, "failed"),
        ({"sfm": "succeeded", "gs": "failed"}, True, "failed"),
    ],
)
def test_job_status_follows_its_stages(stages: dict[str, str], claimed: bool, expected: str) -> None:
    assert aggregate_status(stages, claimed=claimed) == expected


def test_sfm_success_queues_only_the_requested_training_stages_in_parallel() -> None:
    assert next_stages("sfm", ["gs"]) == ["gs"]
    assert next_stages("sfm", ["nerf", "gs"]) == ["gs", "nerf"]
    assert next_stages("gs", ["gs", "nerf"]) == []


def test_backoff_doubles_per_attempt_and_is_capped() -> None:
    assert [retry_delay_s(n, 5.0) for n in (1, 2, 3)] == [5.0, 10.0, 20.0]
    assert retry_delay_s(30, 5.0) == 600.0
    assert retry_delay_s(3, 0.0) == 0.0


def test_only_retryable_failures_with_attempts_left_are_retried() -> None:
    assert should_retry(1, 3, True)
    assert not should_retry(3, 3, True)
    assert not should_retry(1, 3, False)
