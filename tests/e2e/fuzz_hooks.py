"""Schemathesis hooks (``SCHEMATHESIS_HOOKS=tests.e2e.fuzz_hooks``): path parameters that name real things.

Left alone, schemathesis fills ``{job_id}`` and ``{name}`` with random strings, so every job-id route
answers 404 before it reaches the code that reads a job. These hooks make each generated path
either the random one or the same path with a real job id (from ``FUZZ_JOB_IDS``, comma-separated)
and a real artifact name (from ``FUZZ_ARTIFACT_NAMES``); hypothesis picks between them, so both the
unknown-id and the real-id branches are fuzzed with generated bodies, queries and headers.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import strategies as st

JOB_IDS_ENV = "FUZZ_JOB_IDS"
ARTIFACT_NAMES_ENV = "FUZZ_ARTIFACT_NAMES"


def _listed(variable: str) -> list[str]:
    return [v for v in os.environ.get(variable, "").split(",") if v]


@schemathesis.hook
def flatmap_path_parameters(
    context: Any, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """The generated path parameters, or the same with a real job id and artifact name."""
    if not path_parameters:  # an operation without path parameters
        return st.just(path_parameters)
    real: dict[str, st.SearchStrategy[str]] = {}
    if "job_id" in path_parameters and (job_ids := _listed(JOB_IDS_ENV)):
        real["job_id"] = st.sampled_from(job_ids)
    if "name" in path_parameters and (names := _listed(ARTIFACT_NAMES_ENV)):
        real["name"] = st.sampled_from(names)
    if not real:
        return st.just(path_parameters)
    with_real = st.fixed_dictionaries(real).map(lambda chosen: {**path_parameters, **chosen})
    return st.one_of(st.just(path_parameters), with_real)
