# syntax=docker/dockerfile:1
# The backup service of docker-compose.prod.yml: the nubo CLI with PostgreSQL 16's client
# tools. pg_dump must be the server's major version or newer, and Debian's own is older, so
# they come from the PostgreSQL project's apt repository. mongodump is not included (MongoDB
# holds only 30 days of events and notifications): `nubo backup` says it skipped MongoDB.
FROM python:3.12-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md cli.py ./
COPY nubo_backend ./nubo_backend
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/venv/bin/pip install --no-cache-dir .

FROM python:3.12-slim AS runtime
ARG PG_MAJOR=16
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && install -d /usr/share/postgresql-common/pgdg \
    && curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
       https://www.postgresql.org/media/keys/ACCC4CF8.asc \
    && . /etc/os-release \
    && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt ${VERSION_CODENAME}-pgdg main" \
       > /etc/apt/sources.list.d/pgdg.list \
    && apt-get update && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" \
    && apt-get purge -y curl && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NUBO_ROOT=/app \
    NUBO_ENV=production \
    NUBO_BACKUP_TARGET=/backups
# The API image's ids (10001, pinned in both): it reads the API's 0600 signing secret.
RUN groupadd --system --gid 10001 nubo \
    && useradd --system --uid 10001 --gid nubo --home-dir /app --shell /usr/sbin/nologin nubo \
    && mkdir -p /backups && chown nubo:nubo /backups
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=nubo:nubo sql ./sql
COPY --chown=nubo:nubo config ./config
USER nubo
VOLUME /backups
CMD ["nubo", "backup"]
