# The claims ledger as a container: slim, non-root, with a health check.
#   docker build -t claims-ledger .
#   docker compose up          (PostgreSQL, migrations, API, projections, checkpoints)
# Dependencies come from requirements.lock (pinned with hashes: `make lock`), the project
# itself from its own wheel (migrations included).

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/ledger
COPY requirements.lock /src/requirements.lock
RUN /opt/ledger/bin/pip install --require-hashes -r /src/requirements.lock
COPY pyproject.toml setup.py MANIFEST.in README.md /src/
COPY ledger /src/ledger
COPY api /src/api
COPY migrations /src/migrations
RUN /opt/ledger/bin/pip install --no-deps /src \
 && /opt/ledger/bin/python -c "import ledger.persistence.migrate as m; assert m.discover()"

FROM python:3.11-slim
RUN groupadd --system --gid 10001 ledger \
 && useradd --system --uid 10001 --gid ledger --home-dir /var/lib/ledger --shell /usr/sbin/nologin ledger \
 && mkdir -p /var/lib/ledger/checkpoints /var/lib/ledger-keys \
 && chown -R ledger:ledger /var/lib/ledger /var/lib/ledger-keys \
 && chmod 0700 /var/lib/ledger-keys
COPY --from=build /opt/ledger /opt/ledger
ENV PATH=/opt/ledger/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LEDGER_HOST=0.0.0.0 \
    LEDGER_PORT=8000 \
    LEDGER_DATA_DIR=/var/lib/ledger \
    LEDGER_CODES_CACHE_DIR=/var/lib/ledger/codes-cache \
    LEDGER_CHECKPOINT_DIR=/var/lib/ledger/checkpoints \
    LEDGER_CHECKPOINT_KEY_FILE=/var/lib/ledger-keys/checkpoint-ed25519.pem \
    LEDGER_LOG_FORMAT=json
USER ledger
WORKDIR /var/lib/ledger
VOLUME ["/var/lib/ledger", "/var/lib/ledger-keys"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=40s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('LEDGER_PORT', '8000'), timeout=2)"]
ENTRYPOINT ["ledger"]
CMD ["serve", "--workers", "2"]
