"""The compose files validate with a filled ``.env``, refuse a missing required variable, and ``.env.example``
documents every variable they read."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import Settings
from tests.deploy.deployfiles import (
    compose_combinations,
    compose_files,
    env_example_entries,
    interpolations,
    is_standalone,
    required_variables,
    run_compose,
    write_filled_env,
)

COMBINATIONS = compose_combinations()
COMBINATION_IDS = ["+".join(f.name for f in files) for files in COMBINATIONS]
MISSING_CASES = [(files, name) for files in COMBINATIONS for name in sorted(required_variables(files))]


def test_the_gpu_stack_the_cpu_override_and_the_remote_workers_file_are_all_checked() -> None:
    names = {tuple(f.name for f in files) for files in COMBINATIONS}
    assert ("docker-compose.yml",) in names
    assert ("docker-compose.yml", "docker-compose.cpu.yml") in names
    assert ("docker-compose.workers.yml",) in names


@pytest.mark.parametrize("files", COMBINATIONS, ids=COMBINATION_IDS)
def test_compose_accepts_the_files_with_a_filled_env(
    files: tuple[Path, ...], tmp_path: Path, compose_binary: str
) -> None:
    env_file = write_filled_env(tmp_path / ".env", required_variables(files))
    done = run_compose(files, env_file, "config", "--quiet")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("files", "variable"), MISSING_CASES, ids=[f"{'+'.join(f.name for f in c)}-{v}" for c, v in MISSING_CASES]
)
def test_compose_rejects_an_env_missing_a_required_variable(
    files: tuple[Path, ...], variable: str, tmp_path: Path, compose_binary: str
) -> None:
    env_file = write_filled_env(tmp_path / ".env", required_variables(files), leave_out=variable)
    done = run_compose(files, env_file, "config", "--quiet")
    assert done.returncode != 0
    assert variable in done.stderr


def test_every_secret_of_the_stack_is_a_required_variable() -> None:
    required = required_variables(tuple(compose_files()))
    for name in ("MONGO_ROOT_PASSWORD", "MONGO_APP_PASSWORD", "RABBITMQ_PASSWORD"):
        assert name in required
    secrets = {n for n in Settings.model_fields if n.endswith(("_token", "_secret"))}
    assert secrets
    assert {f"VID2SCENE_{n.upper()}" for n in secrets} <= required


def test_env_example_documents_every_variable_the_compose_files_read() -> None:
    documented = set(env_example_entries())
    for compose_file in compose_files():
        used = {name for name, _, _ in interpolations(compose_file)}
        assert used <= documented, f"{compose_file.name}: {sorted(used - documented)} missing from .env.example"


def test_env_example_leaves_every_required_variable_empty() -> None:
    required = required_variables(tuple(compose_files()))
    for name, (value, commented) in env_example_entries().items():
        if name in required and not commented:
            assert value == "", f"{name} must be left for the operator to fill, not shipped with a value"


def test_env_example_shows_the_defaults_the_compose_files_apply() -> None:
    entries = env_example_entries()
    for compose_file in compose_files():
        for name, op, default in interpolations(compose_file):
            if op in (":-", "-") and name in entries and not entries[name][1]:
                assert entries[name][0] == default, f"{compose_file.name}: {name} defaults to {default!r}"


def test_env_example_vid2scene_variables_are_settings_fields_with_their_defaults() -> None:
    fields = Settings.model_fields
    for name, (value, commented) in env_example_entries().items():
        if not name.startswith("VID2SCENE_"):
            continue
        field = name.removeprefix("VID2SCENE_").lower()
        assert field in fields, f"{name} is not a field of shared.settings.Settings"
        default = fields[field].default
        if value and not commented and default is not None:
            assert value == str(default), f"{name}={value} differs from the settings default {default!r}"


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for unit in sorted(units, key=len, reverse=True):
        if duration.endswith(unit):
            return float(duration.removesuffix(unit)) * units[unit]
    raise AssertionError(f"unexpected duration {duration!r}")


def test_worker_containers_wait_longer_than_a_worker_may_take_to_stop() -> None:
    import yaml

    class ComposeLoader(yaml.SafeLoader):
        """YAML with compose's own tags (``!reset``, ``!override``) read as plain values."""

    ComposeLoader.add_multi_constructor("!", lambda loader, _tag, node: None)
    limit = max(m.le for m in Settings.model_fields["stop_grace_s"].metadata if hasattr(m, "le"))
    assert Settings().stop_grace_s < limit
    workers = 0
    for compose_file in filter(is_standalone, compose_files()):  # overrides inherit the setting
        services = (yaml.load(compose_file.read_text(), Loader=ComposeLoader) or {}).get("services") or {}
        for name, service in services.items():
            if name.endswith("_worker"):
                workers += 1
                grace = service.get("stop_grace_period")
                assert grace is not None and _seconds(grace) >= limit, f"{compose_file.name}: {name}"
    assert workers >= 6  # three in the main file, three in the remote-workers file
