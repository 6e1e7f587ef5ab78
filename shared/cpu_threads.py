"""CPU thread pools of every process that trains or renders: passive waits, sized to the CPUs the process may use.

torch's OpenMP threads spin while they wait for work. On a 2-core machine shared with other jobs (a CI runner) the
spinning costs more than the second thread brings: paired ``train-gs`` runs were 3–4× slower in wall time with the
default policy than with ``OMP_WAIT_POLICY=PASSIVE`` while other jobs wanted the cores; on an idle machine the two
are close (``python bench/bench_threads.py`` measures both on this machine).
The wait policy is read once, when the OpenMP runtime starts (when torch is imported), so
:func:`configure_cpu_threads` must run at the top of every entry point, before torch or numba is imported; entry
points are ``vid2scene`` (every sub-command, the local stack's worker threads included) and ``python -m *_worker``.

The thread count is the number of CPUs this process may run on: the scheduler affinity mask
(``os.sched_getaffinity``) bounded by a cgroup CPU quota (``cpu.max`` in cgroup v2, ``cpu.cfs_quota_us`` /
``cpu.cfs_period_us`` in v1: what ``docker run --cpus`` and compose ``cpus:`` set), unless ``VID2SCENE_THREADS``
says otherwise.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

#: Environment variables read by the thread pools at start-up: OpenMP (torch), MKL, OpenBLAS and numba.
THREAD_COUNT_VARIABLES: tuple[str, ...] = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (``2.5`` = two and a half), or None without a quota.

    Args:
        root: where the cgroup file system is mounted.

    Returns:
        ``quota / period`` from cgroup v2's ``cpu.max`` or v1's ``cpu/cpu.cfs_quota_us`` and
        ``cpu/cpu.cfs_period_us``; None when unlimited or unreadable.
    """
    try:
        quota, _, period = (root / "cpu.max").read_text().strip().partition(" ")
        if quota == "max":
            return None
        return int(quota) / int(period or 100_000)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    if quota_us <= 0 or period_us <= 0:
        return None
    return quota_us / period_us


def usable_cpu_count(root: Path = CGROUP_ROOT) -> int:
    """The CPUs this process may actually use: its affinity mask, bounded by its cgroup quota (rounded up), ≥ 1.

    Args:
        root: where the cgroup file system is mounted.

    Returns:
        The thread count a CPU-bound pool should have.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(1, cpus)


def configure_cpu_threads(threads: int | None = None, *, root: Path = CGROUP_ROOT) -> int:
    """Make OpenMP wait passively and size torch's, MKL's and numba's thread pools; call before importing torch.

    Sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already chose a policy, and the thread-count variables of
    :data:`THREAD_COUNT_VARIABLES` to the chosen count (an explicit ``threads`` wins over them; without it a count the
    environment already gives is kept). When torch or numba is already imported (a test, or a library that imported it
    early) their pools are resized at once; the wait policy then applies only to processes started later.

    Args:
        threads: the thread count (``VID2SCENE_THREADS``); None: :func:`usable_cpu_count`.
        root: where the cgroup file system is mounted.

    Returns:
        The thread count applied.

    Raises:
        ValueError: ``threads`` is below 1.
    """
    if threads is not None and threads < 1:
        raise ValueError(f"the thread count must be at least 1, got {threads}")
    count = threads if threads is not None else _count_from_environment() or usable_cpu_count(root)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    for name in THREAD_COUNT_VARIABLES:
        if threads is not None or name not in os.environ:
            os.environ[name] = str(count)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(count)
    if "numba" in sys.modules:
        import numba

        # numba.config sets its NUMBA_* settings through globals() at import time, unseen by mypy
        numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    log.debug("CPU threads: %d (OMP_WAIT_POLICY=%s)", count, os.environ["OMP_WAIT_POLICY"])
    return count


def _count_from_environment() -> int | None:
    """``OMP_NUM_THREADS`` when the environment set it to a positive integer (the user's own choice)."""
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return value if value >= 1 else None
