# syntax=docker/dockerfile:1
# The vsbatch image: `vsbatch worker`, `vsbatch beat`, `vsbatch emulator`, `vsbatch demo`, any
# other command. Dependencies come from uv.lock only (uv sync --locked); no secret is baked in:
# the API key comes from a secret file at run time (see docker-compose.yml), the Redis URL
# from the environment.
#
# The base image is pinned by the digest of its multi-architecture index (a tag can move);
# to upgrade: docker buildx imagetools inspect python:3.11-slim-bookworm, then replace both.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${PYTHON_IMAGE} AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /uvx /bin/
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first (a layer that survives code changes), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY src ./src
RUN uv sync --locked --no-dev --no-editable

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 vsbatch \
    && useradd --system --uid 10001 --gid vsbatch --home-dir /home/vsbatch --create-home vsbatch \
    && mkdir -p /data && chown vsbatch:vsbatch /data
COPY --from=build --chown=root:root /app/.venv /app/.venv
# `vsbatch demo` runs the example file from the working directory.
COPY --chown=root:root examples/updates.csv /app/examples/updates.csv
WORKDIR /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    VSBATCH_DATA_DIR=/data \
    VSBATCH_LOG_FORMAT=json \
    VSBATCH_METRICS_HOST=0.0.0.0
USER 10001:10001
ENTRYPOINT ["vsbatch"]
CMD ["--help"]
