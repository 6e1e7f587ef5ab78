"""The Dockerfiles lint clean, pin their bases, run as a non-root user with a health check, copy only files
that exist and reach the build context, and compile gsplat's CUDA extension at build time."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.deployfiles import (
    REPO_ROOT,
    Stage,
    copy_from,
    copy_sources,
    dockerfiles,
    dockerignored,
    exec_form,
    parse_dockerfile,
    runtime_stages,
    stage_closure,
    stage_env,
)

DOCKERFILES = dockerfiles()
IDS = [path.name for path in DOCKERFILES]


def _runtime(path: Path) -> list[Stage]:
    return runtime_stages(parse_dockerfile(path))


def test_there_is_an_image_for_the_web_server_the_sfm_worker_and_the_gpu_workers() -> None:
    assert {"web_server.Dockerfile", "sfm_worker.Dockerfile", "gpu_worker.Dockerfile"} <= set(IDS)


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_hadolint_passes(path: Path, hadolint_binary: str) -> None:
    done = subprocess.run(
        [hadolint_binary, "--no-color", str(path)], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_every_base_image_is_pinned_to_a_release(path: Path) -> None:
    stages = parse_dockerfile(path)
    names = {s.name for s in stages}
    for stage in stages:
        if stage.base in names:
            continue
        image, _, tag = stage.base.rpartition(":")
        assert image and "/" not in tag and tag != "latest", f"{stage.base} has no tag"
        assert re.match(r"v?\d+\.\d+(\.\d+)?", tag), f"{stage.base}: pin a release, not a moving tag"


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_every_image_runs_as_a_non_root_user_with_a_healthcheck_and_a_command(path: Path) -> None:
    for stage in _runtime(path):
        users = [i.args.split(":")[0] for i in stage.instructions if i.keyword == "USER"]
        assert users and users[-1] not in ("root", "0"), f"{path.name}:{stage.name} runs as root"
        checks = [i for i in stage.instructions if i.keyword == "HEALTHCHECK"]
        assert checks and "CMD" in checks[-1].args, f"{path.name}:{stage.name} has no HEALTHCHECK"
        healthcheck_script = exec_form(checks[-1].args.split("CMD", 1)[1])[1]
        copied = [i.args.split()[-1] for i in stage.instructions if i.keyword == "COPY"]
        assert healthcheck_script in copied, f"{path.name}:{stage.name} does not copy {healthcheck_script}"
        assert [i for i in stage.instructions if i.keyword == "CMD"], f"{path.name}:{stage.name} has no CMD"


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_every_file_an_image_copies_exists_and_is_in_the_build_context(path: Path) -> None:
    for stage in parse_dockerfile(path):
        for source in copy_sources(stage):
            assert (REPO_ROOT / source).exists(), f"{path.name}: COPY {source}: not in the repository"
            assert not dockerignored(source.rstrip("/")), f"{path.name}: COPY {source}: excluded by .dockerignore"


def test_dockerignore_keeps_secrets_and_local_clutter_out_of_the_build_context() -> None:
    for path in (".env", ".git", "venv", "web_server/frontend/node_modules", "shared/__pycache__"):
        assert dockerignored(path), path
    for path in ("pyproject.toml", "shared/settings.py", "docker/healthcheck.py"):
        assert not dockerignored(path), path


def _installs_gsplat_from_source(stage: Stage) -> bool:
    return any(i.keyword == "RUN" and "--no-binary gsplat" in i.args for i in stage.instructions)


def test_gsplat_cuda_extension_is_compiled_at_image_build_for_stated_architectures() -> None:
    builders = [(p, s) for p in DOCKERFILES for s in parse_dockerfile(p) if _installs_gsplat_from_source(s)]
    assert builders, "no image compiles gsplat from source"
    for path, stage in builders:
        assert "-devel" in stage.base, f"{path.name}:{stage.name}: nvcc needs a CUDA -devel base"
        run = next(i.args for i in stage.instructions if i.keyword == "RUN" and "--no-binary gsplat" in i.args)
        assert "--no-build-isolation" in run, "gsplat must build against the image's torch"
        env = stage_env(stage)
        assert env.get("BUILD_NO_CUDA", "0") != "1"
        args = {
            i.args.split("=", 1)[0]: i.args.split("=", 1)[1].strip('"')
            for i in stage.instructions
            if i.keyword == "ARG" and "=" in i.args
        }
        arch_list = args.get("TORCH_CUDA_ARCH_LIST", env.get("TORCH_CUDA_ARCH_LIST", ""))
        assert re.fullmatch(r"\d+\.\d+(\+PTX)?(;\d+\.\d+(\+PTX)?)*", arch_list), arch_list
        assert "TORCH_CUDA_ARCH_LIST" in env, "the ARG must reach setup.py as an environment variable"
        consumers = [
            s
            for s in _runtime(path)
            if any(
                copy_from(i) == stage.name
                for c in stage_closure(parse_dockerfile(path), s.name)
                for i in c.instructions
            )
        ]
        assert consumers, f"{path.name}: no runtime stage copies from {stage.name}"
        for runtime in consumers:
            assert "-runtime" in runtime.base or "-base" in runtime.base, f"{runtime.name}: ship without nvcc"
            checks = [i.args for i in runtime.instructions if i.keyword == "RUN"]
            assert any("from gsplat import csrc" in c for c in checks), f"{runtime.name}: prove the extension loads"
