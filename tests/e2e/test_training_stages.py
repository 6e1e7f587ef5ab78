"""The end-to-end tests run every training stage; a stage whose worker is missing is an error, never dropped."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import MissingWorkerError, training_stages


def test_every_training_stage_is_run() -> None:
    assert training_stages() == ("gs", "nerf")


def test_a_stage_without_its_worker_package_is_an_error_naming_the_extra() -> None:
    with pytest.raises(MissingWorkerError, match=r"^nosuch_worker not installed: pip install 'vid2scene\[nosuch\]'$"):
        training_stages(("gs", "nosuch"))  # type: ignore[arg-type]
