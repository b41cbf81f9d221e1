# Balsam service image: gunicorn + uvicorn workers serving balsam.server.main:app.
#   docker build -t balsam-server .
# Runs as an unprivileged user; configuration comes from the environment (docs/settings.md).
# The PostgreSQL 17 client tools are included for `balsam server backup`/`restore` (pg_dump must not be older
# than the server: match them to the database, see docker-compose.yml).
FROM python:3.13-slim-trixie

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-17 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 balsam \
    && useradd --system --uid 10001 --gid balsam --home-dir /srv/balsam --create-home --shell /usr/sbin/nologin balsam

# Pinned dependencies first (a cached layer), then the package itself without touching them.
COPY requirements/deploy.txt /tmp/requirements.txt
RUN pip install --no-compile -r /tmp/requirements.txt && rm /tmp/requirements.txt

COPY pyproject.toml /tmp/src/pyproject.toml
COPY balsam /tmp/src/balsam
# pyproject.toml names README.md as the long description; the image does not need its text.
RUN touch /tmp/src/README.md \
    && pip install --no-compile --no-deps /tmp/src \
    && rm -rf /tmp/src \
    && mkdir -p /etc/balsam /backups \
    && chown balsam:balsam /backups \
    && ln -s "$(python -c 'import balsam.server, pathlib; print(pathlib.Path(balsam.server.__file__).with_name("gunicorn.conf.example.py"))')" /etc/balsam/gunicorn.conf.py \
    && python -c 'import balsam.server.main, balsam.server.db.migrate'

USER balsam
WORKDIR /srv/balsam
ENV SERVER_HOST=0.0.0.0 \
    SERVER_PORT=8000
EXPOSE 8000
# Readiness, not mere liveness: healthy once the database answers and its schema is the one this image ships.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('SERVER_PORT', '8000'), timeout=4)"]
# `docker kill -s HUP <container>` reloads code and config without dropping requests (docs/upgrade.md).
CMD ["gunicorn", "-c", "/etc/balsam/gunicorn.conf.py", "balsam.server.main:app"]
