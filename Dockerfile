# syntax=docker/dockerfile:1
# Build stage: compile wheels with the toolchain; none of it reaches the runtime image.
FROM python:3.12-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md cli.py ./
COPY nubo_backend ./nubo_backend
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/venv/bin/pip install --no-cache-dir .

# Runtime stage: slim Python, the virtualenv, SQL and config; runs as an unprivileged user.
FROM python:3.12-slim AS runtime
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NUBO_ROOT=/app \
    NUBO_ENV=production \
    NUBO_HOST=0.0.0.0 \
    NUBO_PORT=8080 \
    NUBO_JWT_SECRET_FILE=/var/lib/nubo/jwt_secret \
    NUBO_PUSH_VAPID_KEY_FILE=/var/lib/nubo/vapid_private.pem
# /var/lib/nubo belongs to nubo, so a named volume mounted there (compose: api_secrets)
# starts writable: the signing secret is generated into it on first start.
# uid/gid 10001, pinned: the backup image (deploy/backup.Dockerfile) reads the 0600 secret
# this user writes, which works only if both images give nubo the same ids.
RUN groupadd --system --gid 10001 nubo \
    && useradd --system --uid 10001 --gid nubo --home-dir /app --shell /usr/sbin/nologin nubo \
    && mkdir -p /var/lib/nubo && chown nubo:nubo /var/lib/nubo
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=nubo:nubo sql ./sql
COPY --chown=nubo:nubo config ./config
# The media volume's mount point, owned by nubo so that a new named volume is writable
RUN mkdir -p /data/media && chown nubo:nubo /data/media
USER nubo
VOLUME /var/lib/nubo
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2).status != 200)"]
# Migrations first (idempotent, safe with several replicas), then the server.
CMD ["sh", "-c", "nubo migrate && exec nubo serve"]
