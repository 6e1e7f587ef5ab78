# syntax=docker/dockerfile:1.7
# The web server: the REST API, the admin commands (`python -m web_server keys create ...`) and the
# web page. Slim on purpose: no torch, no pycolmap, no CUDA.
#
#   docker build -f docker/web_server.Dockerfile -t vid2scene/web-server .

# --- the web page: built here, never committed -------------------------------------------------
FROM node:22.12.0-bookworm-slim AS frontend
WORKDIR /build/web_server/frontend
COPY web_server/frontend/package.json web_server/frontend/package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY web_server/frontend/ ./
# `npm run build` writes the page's assets to web_server/static/dist.
RUN npm run build

# --- Python dependencies and the vid2scene wheel, in a virtual environment ---------------------
FROM python:3.11.13-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY shared ./shared
COPY web_server ./web_server
RUN /opt/venv/bin/pip install --no-cache-dir ".[server]"

# --- runtime -----------------------------------------------------------------------------------
FROM python:3.11.13-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="vid2scene web server" \
      org.opencontainers.image.source="https://github.com/vid2scene/vid2scene" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 vid2scene \
    && useradd --system --uid 10001 --gid vid2scene --home-dir /data --no-create-home vid2scene \
    && mkdir -p /data \
    && chown vid2scene:vid2scene /data
COPY --from=builder /opt/venv /opt/venv
COPY --from=frontend /build/web_server/static/dist /opt/venv/lib/python3.11/site-packages/web_server/static/dist
COPY docker/healthcheck.py /opt/vid2scene/healthcheck.py
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VID2SCENE_HOST=0.0.0.0 \
    VID2SCENE_PORT=8000 \
    VID2SCENE_DATA_DIR=/data
WORKDIR /data
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=6s --start-period=20s --retries=3 \
    CMD ["python", "/opt/vid2scene/healthcheck.py", "server"]
CMD ["python", "-m", "web_server"]
