# syntax=docker/dockerfile:1
# lrsched: two stages on the same slim base, so the virtualenv's paths match.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only what the runtime needs: the package metadata, the three packages and the playground's
# static files (no tests, tools); plotting (matplotlib) is part of the service.
COPY pyproject.toml README.md ./
COPY rules ./rules
COPY schemas ./schemas
COPY service ./service
RUN pip install --no-compile ".[plot]" \
    && python -m compileall -q /opt/venv/lib

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LRSCHED_HOST=0.0.0.0 \
    LRSCHED_PORT=8000 \
    LRSCHED_STORE=sqlite:////data/lrsched.db
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /app /data \
    && chown app:app /app /data
COPY --from=build /opt/venv /opt/venv
USER app:app
WORKDIR /app
VOLUME ["/data"]
EXPOSE 8000
# No curl in a slim image: the interpreter is the probe.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
# uvicorn is PID 1 (exec form) and gets SIGTERM: it stops accepting, finishes in-flight
# requests for up to 20 s, then exits.
STOPSIGNAL SIGTERM
CMD ["uvicorn", "service.main:app", \
     "--host", "0.0.0.0", "--port", "8000", \
     "--proxy-headers", "--forwarded-allow-ips", "*", \
     "--limit-concurrency", "256", \
     "--http", "service.server:GuardedProtocol", \
     "--timeout-keep-alive", "5", \
     "--timeout-graceful-shutdown", "20", \
     "--no-access-log", \
     "--no-server-header"]
