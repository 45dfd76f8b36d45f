# syntax=docker/dockerfile:1
# One image for every role; the command picks it:
#   ingest | api | connectors run [--destination ID] | store migrate | topics create |
#   demo | token create --role admin
# It talks to a Kafka cluster and a ClickHouse server (AUTHTRAIL_KAFKA_BOOTSTRAP,
# AUTHTRAIL_CLICKHOUSE_URL); the embedded store (chDB, 0.5 GB) is left out.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
# Rust (and a C linker) build the PII rules' native path (connectors/pii_native); the
# final image keeps only the built module.
COPY --from=rust:1-slim-bookworm /usr/local/rustup /usr/local/rustup
COPY --from=rust:1-slim-bookworm /usr/local/cargo /usr/local/cargo
RUN apt-get update && apt-get install --yes --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/authtrail
WORKDIR /src
# Dependencies first: a code change rebuilds only the last layer.
COPY pyproject.toml README.md ./
RUN mkdir -p authtrail schemas infra pipeline query_api connectors \
    && touch authtrail/__init__.py schemas/__init__.py infra/__init__.py pipeline/__init__.py \
       query_api/__init__.py connectors/__init__.py \
    && /opt/authtrail/bin/pip install . \
    && /opt/authtrail/bin/pip uninstall --yes authtrail
COPY authtrail ./authtrail
COPY schemas ./schemas
COPY infra ./infra
COPY pipeline ./pipeline
COPY query_api ./query_api
COPY connectors ./connectors
RUN /opt/authtrail/bin/pip install --no-deps . \
    && find /opt/authtrail -name '__pycache__' -prune -exec rm -rf {} + \
    && /opt/authtrail/bin/authtrail --help > /dev/null \
    && /opt/authtrail/bin/python -c "import connectors.sinks._pii"

FROM python:${PYTHON_VERSION}-slim-bookworm
RUN groupadd --system --gid 10001 authtrail \
    && useradd --system --uid 10001 --gid authtrail --home-dir /var/lib/authtrail \
       --create-home --shell /usr/sbin/nologin authtrail
COPY --from=build /opt/authtrail /opt/authtrail
ENV PATH=/opt/authtrail/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AUTHTRAIL_DATA_DIR=/var/lib/authtrail \
    AUTHTRAIL_API_HOST=0.0.0.0
USER 10001:10001
WORKDIR /var/lib/authtrail
# 8080: query API and page (api); 9464: /metrics, /livez, /readyz (ingest, connectors).
EXPOSE 8080 9464
ENTRYPOINT ["authtrail"]
CMD ["api"]
