"""Every service of the resolved compose models is consistent with the repository: it runs an entry point that
exists, sets only real settings (and the ones its role reads), reaches ports and volumes that exist, installs
the extras of its role, and waits for healthy dependencies."""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared.settings import Settings
from tests.deploy.deployfiles import (
    OUR_PACKAGES,
    REPO_ROOT,
    BuiltService,
    built_services,
    entry_module,
    import_graph,
    installed_extras,
    module_file,
    module_level_imports,
    role_extra,
    settings_fields_read,
    stage_closure,
)

Models = dict[tuple[Path, ...], Any]
GPU_FILES = ("docker-compose.yml", "docker-compose.workers.yml")
HEAVY_DISTRIBUTIONS = ("torch", "pycolmap", "gsplat")


def _label(files: tuple[Path, ...]) -> str:
    return "+".join(f.name for f in files)


def _all_built(models: Models) -> list[tuple[str, BuiltService]]:
    return [(_label(files), service) for files, model in models.items() for service in built_services(model)]


def _extras() -> dict[str, list[str]]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _requirements_of(extras: set[str]) -> set[str]:
    """Distribution names the given extras require, with self-references (``vid2scene[a,b]``) expanded."""
    table = _extras()
    names: set[str] = set()
    todo = list(extras)
    seen: set[str] = set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in table[extra]:
            name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()
            if name == "vid2scene":
                todo += re.findall(r"\[(.*)\]", requirement)[0].split(",")
            else:
                names.add(name)
    return names


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed_closure(distributions: set[str]) -> set[str]:
    """``distributions`` and everything they require, transitively, as installed here (markers honoured)."""
    from packaging.requirements import Requirement

    closure: set[str] = set()
    todo = [_normalise(d) for d in distributions]
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        try:
            requirements = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for text in requirements:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_normalise(requirement.name))
    return closure


def _settings_from(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"VID2SCENE_{name.upper()}", raising=False)
    for name, value in environment.items():
        if name.startswith("VID2SCENE_"):
            monkeypatch.setenv(name, value)
    return Settings()


def test_every_service_of_ours_runs_python_m_with_an_entry_module_of_the_repo(resolved_models: Models) -> None:
    built = _all_built(resolved_models)
    assert built
    for label, service in built:
        module = entry_module(service.command)
        assert module is not None, f"{label}/{service.name}: {service.command} is not `python -m <module>`"
        assert module_file(module) is not None, f"{label}/{service.name}: no {module}/__main__.py in the repository"


def test_every_vid2scene_variable_a_service_gets_is_a_settings_field(resolved_models: Models) -> None:
    for label, service in _all_built(resolved_models):
        for name in service.environment:
            if name.startswith("VID2SCENE_"):
                field = name.removeprefix("VID2SCENE_").lower()
                assert field in Settings.model_fields, f"{label}/{service.name}: {name} is no settings field"


def test_every_service_environment_builds_valid_service_mode_settings(
    resolved_models: Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    for label, service in _all_built(resolved_models):
        settings = _settings_from(service.environment, monkeypatch)
        assert settings.mode == "service", f"{label}/{service.name} must run in service mode"


def test_settings_a_role_reads_whose_defaults_only_work_outside_a_container_are_set(resolved_models: Models) -> None:
    fields = Settings.model_fields
    unsafe = {
        name
        for name, info in fields.items()
        if (isinstance(info.default, str) and re.search(r"127\.0\.0\.1|localhost", info.default))
        or (isinstance(info.default, Path) and not info.default.is_absolute())
    }
    assert {"mongo_url", "amqp_url", "server_url", "data_dir"} <= unsafe
    for label, service in _all_built(resolved_models):
        module = entry_module(service.command)
        assert module is not None and module_file(module) is not None, f"{label}/{service.name}: no entry module"
        read = settings_fields_read(list(import_graph(module).values()), unsafe)
        missing = {f"VID2SCENE_{n.upper()}" for n in read} - set(service.environment)
        assert not missing, f"{label}/{service.name} ({module}) reads {sorted(missing)} but does not set them"


def test_urls_to_services_of_the_project_name_a_port_the_service_exposes(resolved_models: Models) -> None:
    for files, model in resolved_models.items():
        services = model["services"]
        for name, spec in services.items():
            for variable, value in (spec.get("environment") or {}).items():
                if not isinstance(value, str) or "://" not in value:
                    continue
                target = urlsplit(value)
                if target.hostname not in services:
                    continue
                exposed = {int(p) for p in services[target.hostname].get("expose", [])}
                assert target.port in exposed, f"{_label(files)}/{name}: {variable} port {target.port} not exposed"


def test_the_web_server_is_published_on_the_port_it_binds(resolved_models: Models) -> None:
    for label, service in _all_built(resolved_models):
        if entry_module(service.command) != "web_server":
            continue
        port = int(service.environment["VID2SCENE_PORT"])
        assert port in {int(p["target"]) for p in service.spec.get("ports", [])}, label
        assert str(port) in service.spec.get("expose", []), label


def test_database_and_broker_ports_are_not_published_beyond_loopback_by_default(resolved_models: Models) -> None:
    base = resolved_models[(REPO_ROOT / "docker-compose.yml",)]
    for name, spec in base["services"].items():
        if spec.get("build"):
            continue
        for port in spec.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port['target']} beyond loopback"


def test_every_volume_is_declared_and_every_bind_mount_exists_in_the_repository(resolved_models: Models) -> None:
    for files, model in resolved_models.items():
        declared = set(model.get("volumes", {}))
        for name, spec in model["services"].items():
            for volume in spec.get("volumes", []):
                if volume["type"] == "volume":
                    assert volume["source"] in declared, f"{_label(files)}/{name}: {volume['source']} undeclared"
                elif volume["type"] == "bind":
                    source = Path(volume["source"])
                    assert source.exists(), f"{_label(files)}/{name}: {source} does not exist"
                    assert source.is_relative_to(REPO_ROOT)
                    assert volume.get("read_only"), f"{_label(files)}/{name}: mount {source} read-only"


def test_services_wait_for_dependencies_that_have_healthchecks(resolved_models: Models) -> None:
    for files, model in resolved_models.items():
        services = model["services"]
        for name, spec in services.items():
            for dependency, condition in (spec.get("depends_on") or {}).items():
                assert condition["condition"] == "service_healthy", f"{_label(files)}/{name} -> {dependency}"
                assert services[dependency].get("healthcheck", {}).get("test"), f"{dependency} has no healthcheck"


def test_every_service_has_a_healthcheck(resolved_models: Models) -> None:
    for files, model in resolved_models.items():
        for name, spec in model["services"].items():
            assert spec.get("healthcheck", {}).get("test"), f"{_label(files)}/{name} has no healthcheck"


def test_official_images_are_pinned_to_a_patch_release(resolved_models: Models) -> None:
    for files, model in resolved_models.items():
        for name, spec in model["services"].items():
            if not spec.get("build"):
                assert re.search(r":\d+\.\d+\.\d+", spec["image"]), f"{_label(files)}/{name}: pin {spec['image']}"


def test_workers_reserve_a_gpu_in_the_gpu_files_and_run_on_the_cpu_with_the_cpu_override(
    resolved_models: Models,
) -> None:
    for files, model in resolved_models.items():
        names = [f.name for f in files]
        for service in built_services(model):
            if not str(entry_module(service.command)).endswith("_worker"):
                continue
            devices = service.spec.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
            if names == ["docker-compose.yml", "docker-compose.cpu.yml"]:
                assert not devices, f"{service.name} reserves a GPU under the CPU override"
                assert service.environment["VID2SCENE_DEVICE"] == "cpu"
            elif names[-1] in GPU_FILES:
                assert any("gpu" in d.get("capabilities", []) for d in devices), f"{_label(files)}/{service.name}"


def test_every_image_installs_the_extras_its_role_needs(resolved_models: Models) -> None:
    extras_table = _extras()
    for label, service in _all_built(resolved_models):
        module = entry_module(service.command)
        assert module is not None
        needed = role_extra(module)
        assert needed in extras_table, f"{module}: pyproject.toml has no extra {needed!r}"
        target = service.spec["build"].get("target")
        installed = installed_extras(stage_closure(service.stages, target))
        assert needed in installed, f"{label}/{service.name}: {service.dockerfile.name} installs {sorted(installed)}"


def test_the_web_server_image_installs_no_torch_pycolmap_or_gsplat(resolved_models: Models) -> None:
    for label, service in _all_built(resolved_models):
        if entry_module(service.command) != "web_server":
            continue
        closure = stage_closure(service.stages, service.spec["build"].get("target"))
        requirements = _requirements_of(installed_extras(closure))
        assert not requirements & set(HEAVY_DISTRIBUTIONS), f"{label}: {sorted(requirements)}"
        runs = " ".join(i.args for s in closure for i in s.instructions if i.keyword == "RUN")
        for name in HEAVY_DISTRIBUTIONS:
            assert not re.search(rf"\b{name}\b", runs), f"{label}: the web server image installs {name}"


def test_the_third_party_modules_a_role_imports_come_with_the_extras_its_image_installs(
    resolved_models: Models,
) -> None:
    base = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    base_names = {re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0] for r in base}
    providers = importlib.metadata.packages_distributions()
    for label, service in _all_built(resolved_models):
        module = entry_module(service.command)
        assert module is not None and module_file(module) is not None
        target = service.spec["build"].get("target")
        available = _installed_closure(
            base_names | _requirements_of(installed_extras(stage_closure(service.stages, target)))
        )
        for path in import_graph(module).values():
            for name in module_level_imports(path) - set(sys.stdlib_module_names) - set(OUR_PACKAGES) - {"__future__"}:
                dists = {_normalise(d) for d in providers.get(name, [])}
                assert dists & available, (
                    f"{label}/{service.name}: {path.relative_to(REPO_ROOT)} imports {name} ({dists})"
                )
