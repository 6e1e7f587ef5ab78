"""The thread configuration of training and rendering processes: passive OpenMP waits, pools sized to usable CPUs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.cpu_threads import cgroup_cpu_limit, usable_cpu_count

REPO = Path(__file__).resolve().parents[2]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "NUMBA_", "VID2SCENE_"))}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def _run(code: str, **extra: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], env=_clean_env(**extra), capture_output=True, text=True, check=True, timeout=300
    )
    return done.stdout.split()


def test_a_cgroup_v2_quota_is_read_in_cpus(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == pytest.approx(1.5)


def test_an_unlimited_cgroup_v2_has_no_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None


def test_a_cgroup_v1_quota_is_read_in_cpus(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(tmp_path) == pytest.approx(3.0)
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_limit(tmp_path) is None


def test_the_usable_cpus_are_bounded_by_the_quota_rounded_up(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU
    assert usable_cpu_count(tmp_path) == 1
    (tmp_path / "cpu.max").write_text(f"{affinity * 100000 + 1} 100000\n")  # a hair more than the affinity mask
    assert usable_cpu_count(tmp_path) == affinity
    assert usable_cpu_count(tmp_path / "absent") == affinity


def test_configuring_before_torch_loads_sets_a_passive_wait_and_the_pool_size() -> None:
    code = (
        "from shared.cpu_threads import configure_cpu_threads; configure_cpu_threads(1); "
        "import os, torch; print(os.environ['OMP_WAIT_POLICY'], torch.get_num_threads())"
    )
    assert _run(code) == ["PASSIVE", "1"]


def test_configuring_after_torch_loaded_still_resizes_its_pool() -> None:
    code = (
        "import torch; torch.set_num_threads(2); from shared.cpu_threads import configure_cpu_threads; "
        "configure_cpu_threads(1); print(torch.get_num_threads())"
    )
    assert _run(code) == ["1"]


def test_a_wait_policy_the_user_chose_is_kept() -> None:
    code = "from shared.cpu_threads import configure_cpu_threads; configure_cpu_threads(1); import os; print(os.environ['OMP_WAIT_POLICY'])"
    assert _run(code, OMP_WAIT_POLICY="ACTIVE") == ["ACTIVE"]


def test_the_vid2scene_command_configures_threads_from_the_setting_before_any_sub_command() -> None:
    code = (
        "import os, sys\n"
        "from vid2scene.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(os.environ['OMP_WAIT_POLICY'], os.environ['OMP_NUM_THREADS'], os.environ['NUMBA_NUM_THREADS'], "
        "'torch' in sys.modules)"
    )
    assert _run(code, VID2SCENE_THREADS="1")[-4:] == ["PASSIVE", "1", "1", "False"]  # after the help text


def test_a_thread_count_below_one_is_refused() -> None:
    from shared.cpu_threads import configure_cpu_threads

    with pytest.raises(ValueError, match="at least 1"):
        configure_cpu_threads(0)
