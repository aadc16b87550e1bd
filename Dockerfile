# The paymq image: every product process (workers, sandbox, API, webhooks, reconciler,
# subscribers, key setup) from one image; the compose file picks the process with `command:`.
# There is deliberately no ENTRYPOINT, so health checks and `docker compose run` can start
# `python` as easily as `paymq`.
#
# Two targets: `runtime` (the default, last stage) holds the product only; `demo` adds paymq's
# development tools (tools/: `paymq demo`, `paymq localstripe`) for the compose demo's producer
# and Stripe emulator. Production deployments build and run `runtime`.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install paymq and its dependencies into a virtualenv -----------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/paymq

WORKDIR /src
COPY pyproject.toml README.md ./
COPY common ./common
COPY producer ./producer
COPY store ./store
COPY workers ./workers
COPY webhooks ./webhooks
COPY sandbox ./sandbox
COPY paymq ./paymq
# With the tracing extra, so PAYMQ_TRACING=otlp works without another image.
RUN /opt/paymq/bin/pip install --no-cache-dir '.[tracing]'

# --- build-tools: the same virtualenv plus the development tools (localstripe included) ---
FROM build AS build-tools
COPY tools ./tools
RUN /opt/paymq/bin/pip install --no-cache-dir ./tools

# --- base: the runtime user and environment, no virtualenv yet ---------------------------
FROM ${PYTHON_IMAGE} AS base

ENV PATH=/opt/paymq/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PAYMQ_KEYS_DIR=/keys

# A fixed uid, so files in the keys volume keep one owner across rebuilds. /keys exists in
# the image, owned by that user and private to it: Docker copies the owner and mode of the
# mount point into a new named volume, so the volume starts out writable by paymq only.
RUN groupadd --system --gid 10001 paymq \
    && useradd --system --uid 10001 --gid paymq --home-dir /home/paymq --create-home \
        --shell /usr/sbin/nologin paymq \
    && install --directory --owner=paymq --group=paymq --mode=0700 /keys

# --- demo: the product and the development tools ------------------------------------------
FROM base AS demo
# The same base image as the build stage, so the virtualenv's python symlink stays valid.
COPY --from=build-tools /opt/paymq /opt/paymq
USER 10001:10001
WORKDIR /home/paymq
CMD ["paymq", "--help"]

# --- runtime (default): the product's virtualenv only; no sources, no build tooling ------
FROM base AS runtime
COPY --from=build /opt/paymq /opt/paymq

# Numeric, so runtimes that enforce non-root (Kubernetes runAsNonRoot) can verify it.
USER 10001:10001
WORKDIR /home/paymq

CMD ["paymq", "--help"]
