# syntax=docker/dockerfile:1.7
# The structure-from-motion worker: consumes `stage.sfm`, runs COLMAP through pycolmap.
#
# PYCOLMAP_PACKAGE picks the COLMAP build: `pycolmap` (CPU SIFT; the default, runs anywhere) or
# `pycolmap-cuda12` (GPU SIFT extraction and matching; needs an NVIDIA driver for CUDA 12 on the
# host and a GPU reservation in compose; its CUDA runtime comes from pip, so the base stays slim).
#
#   docker build -f docker/sfm_worker.Dockerfile -t vid2scene/sfm-worker .
#   docker build -f docker/sfm_worker.Dockerfile --build-arg PYCOLMAP_PACKAGE=pycolmap-cuda12 .

# --- Python dependencies and the vid2scene wheel, in a virtual environment ---------------------
FROM python:3.11.13-slim-bookworm AS builder
ARG PYCOLMAP_PACKAGE=pycolmap
ARG PYCOLMAP_VERSION=4.2.1
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY shared ./shared
COPY sfm_worker ./sfm_worker
# `.[sfm]` names the CPU `pycolmap`; the CUDA build ships the same `pycolmap` module under another
# distribution name, so it replaces the CPU one rather than sitting beside it.
RUN /opt/venv/bin/pip install --no-cache-dir ".[sfm]" "pycolmap==${PYCOLMAP_VERSION}" \
    && if [ "${PYCOLMAP_PACKAGE}" != "pycolmap" ]; then \
        /opt/venv/bin/pip uninstall --yes pycolmap \
        && /opt/venv/bin/pip install --no-cache-dir "${PYCOLMAP_PACKAGE}==${PYCOLMAP_VERSION}"; \
    fi \
    && /opt/venv/bin/python -c "import pycolmap; print('pycolmap', pycolmap.__version__)"

# --- runtime -----------------------------------------------------------------------------------
FROM python:3.11.13-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="vid2scene SfM worker" \
      org.opencontainers.image.source="https://github.com/vid2scene/vid2scene" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 vid2scene \
    && useradd --system --uid 10001 --gid vid2scene --home-dir /data --no-create-home vid2scene \
    && mkdir -p /data \
    && chown vid2scene:vid2scene /data
COPY --from=builder /opt/venv /opt/venv
COPY docker/healthcheck.py /opt/vid2scene/healthcheck.py
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VID2SCENE_DATA_DIR=/data \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
WORKDIR /data
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=12s --start-period=30s --retries=3 \
    CMD ["python", "/opt/vid2scene/healthcheck.py", "worker"]
CMD ["python", "-m", "sfm_worker"]
