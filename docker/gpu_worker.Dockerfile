# syntax=docker/dockerfile:1.7
# The training workers: one image for both, `python -m gs_worker` (Gaussian splats, gsplat) and
# `python -m nerf_worker` (TensoRF). They share PyTorch and its CUDA libraries, which are most of the
# image, so one image builds once and stores once; compose picks the role with `command`.
#
# Targets:
#   cuda (default) - PyTorch with CUDA and gsplat's CUDA extension compiled here, at image build,
#                    for TORCH_CUDA_ARCH_LIST, so no job waits for a JIT build. A GPU of another
#                    architecture needs its compute capability added to the list and a rebuild.
#   cpu            - PyTorch for the CPU on a slim base: the same workers, slow, for a box
#                    without a GPU (docker-compose.cpu.yml builds this target). The splat worker
#                    renders with the compiled (numba) rasterizer; the package directory is read-only
#                    to the worker's user, so numba caches its kernels in NUMBA_CACHE_DIR.
#
#   docker build -f docker/gpu_worker.Dockerfile -t vid2scene/gpu-worker .
#   docker build -f docker/gpu_worker.Dockerfile --target cpu -t vid2scene/gpu-worker:cpu .
#
# The CUDA release of the base images, of the PyTorch index and of nvcc must agree (12.8 here).

# --- the CPU variant -----------------------------------------------------------------------------
FROM python:3.11.13-slim-bookworm AS cpu-builder
ARG TORCH_VERSION=2.13.0
ARG TORCH_CPU_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --index-url "${TORCH_CPU_INDEX_URL}" "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY shared ./shared
COPY gs_worker ./gs_worker
COPY nerf_worker ./nerf_worker
RUN /opt/venv/bin/pip install --no-cache-dir ".[gs,nerf]" \
    && /opt/venv/bin/python -c "import torch, gsplat; print('torch', torch.__version__, 'gsplat', gsplat.__version__)"

FROM python:3.11.13-slim-bookworm AS cpu
LABEL org.opencontainers.image.title="vid2scene training workers (CPU)" \
      org.opencontainers.image.source="https://github.com/vid2scene/vid2scene" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 vid2scene \
    && useradd --system --uid 10001 --gid vid2scene --home-dir /data --no-create-home vid2scene \
    && mkdir -p /data \
    && chown vid2scene:vid2scene /data
COPY --from=cpu-builder /opt/venv /opt/venv
COPY docker/healthcheck.py /opt/vid2scene/healthcheck.py
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VID2SCENE_DATA_DIR=/data \
    VID2SCENE_DEVICE=cpu \
    NUMBA_CACHE_DIR=/tmp/numba-cache
WORKDIR /data
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=12s --start-period=30s --retries=3 \
    CMD ["python", "/opt/vid2scene/healthcheck.py", "worker"]
CMD ["python", "-m", "gs_worker"]

# --- the CUDA variant ----------------------------------------------------------------------------
FROM ghcr.io/astral-sh/uv:0.6.14 AS uv

FROM nvidia/cuda:12.8.1-devel-ubuntu24.04 AS cuda-builder
ARG TORCH_VERSION=2.13.0
ARG TORCH_CUDA_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG TORCH_CUDA_ARCH_LIST="8.0;8.6;8.9;9.0"
ARG MAX_JOBS=4
ENV UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PYTHON_PREFERENCE=only-managed \
    UV_NO_CACHE=1 \
    UV_LINK_MODE=copy \
    CUDA_HOME=/usr/local/cuda \
    TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST}" \
    MAX_JOBS="${MAX_JOBS}"
COPY --from=uv /uv /usr/local/bin/uv
# g++ is nvcc's host compiler for gsplat's extension.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*
# A relocatable CPython 3.11 (the distribution's python3 is 3.12), copied whole into the runtime.
RUN uv venv --python 3.11 /opt/venv \
    && uv pip install --python /opt/venv/bin/python --index-url "${TORCH_CUDA_INDEX_URL}" "torch==${TORCH_VERSION}" \
    && uv pip install --python /opt/venv/bin/python "setuptools>=68" wheel "ninja>=1.11"
# gsplat from its source distribution (PyPI's wheel compiles on first use): the CUDA extension is
# built now against the torch above, for every architecture in TORCH_CUDA_ARCH_LIST.
RUN uv pip install --python /opt/venv/bin/python --no-build-isolation --no-binary gsplat "gsplat==1.5.3"
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY shared ./shared
COPY gs_worker ./gs_worker
COPY nerf_worker ./nerf_worker
RUN uv pip install --python /opt/venv/bin/python ".[gs,nerf]"

FROM nvidia/cuda:12.8.1-base-ubuntu24.04 AS cuda
LABEL org.opencontainers.image.title="vid2scene training workers (CUDA)" \
      org.opencontainers.image.source="https://github.com/vid2scene/vid2scene" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 vid2scene \
    && useradd --system --uid 10001 --gid vid2scene --home-dir /data --no-create-home vid2scene \
    && mkdir -p /data \
    && chown vid2scene:vid2scene /data
COPY --from=cuda-builder /opt/python /opt/python
COPY --from=cuda-builder /opt/venv /opt/venv
COPY docker/healthcheck.py /opt/vid2scene/healthcheck.py
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VID2SCENE_DATA_DIR=/data \
    VID2SCENE_DEVICE=cuda
# Fails the build unless the precompiled extension is in the image and loads (no GPU needed).
RUN python -c "from gsplat import csrc; import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
WORKDIR /data
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=12s --start-period=60s --retries=3 \
    CMD ["python", "/opt/vid2scene/healthcheck.py", "worker"]
CMD ["python", "-m", "gs_worker"]
