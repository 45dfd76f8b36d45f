"""Runtime settings, read from ``AUTHTRAIL_*`` environment variables.

Every process (ingest worker, query API, connectors, CLI) reads the same ``Settings``; the
README's configuration table is this class. Values that may hold credentials (the
ClickHouse URL) are only ever printed through ``redact_url``."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.keys import check_key_strength
from schemas.topics import Topics

Port = Annotated[int, Field(ge=1, le=65535)]


class Settings(BaseSettings):
    """All of authtrail's configuration. Field ``x`` is variable ``AUTHTRAIL_X``."""

    # Errors name the setting, never its value (it may be a key or a password).
    model_config = SettingsConfigDict(
        env_prefix="AUTHTRAIL_", extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Field(Path("var"), description="Where the embedded broker and chDB keep data.")
    cache_dir: Path = Field(
        Path.home() / ".cache" / "authtrail",
        description="Downloaded artefacts (the Kafka broker's jars), shared by checkouts.",
    )
    log_level: str = Field("INFO", description="Python log level of every process.")

    # Kafka
    kafka_bootstrap: str | None = Field(
        None, description="Use this Kafka cluster (host:port,...); unset: run the local broker."
    )
    kafka_port: Port = Field(9092, description="Local broker's client port (127.0.0.1).")
    kafka_controller_port: Port = Field(9093, description="Local broker's KRaft controller port.")
    kafka_version: str = Field("4.4.0", description="Apache Kafka release the local broker runs.")
    kafka_heap: str = Field("512m", description="Local broker's JVM heap (-Xmx).")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How clients talk to AUTHTRAIL_KAFKA_BOOTSTRAP."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism (with SASL_* protocols)."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (secret).")
    kafka_ssl_ca_file: Path | None = Field(
        None, description="CA bundle that signed the brokers' certificates (SSL, SASL_SSL)."
    )
    kafka_debug: str | None = Field(
        None,
        pattern=r"^[a-z]+(,[a-z]+)*$",
        description="librdkafka debug contexts for authtrail's Kafka clients, logged at "
        "DEBUG (e.g. 'cgrp,fetch' to see what a consumer group does); unset in normal use.",
    )
    topic_prefix: str = Field("", description="Prefix of every topic name.")
    topic_partitions: int = Field(6, ge=1, le=10_000, description="Partitions of new topics.")
    topic_replication: int = Field(1, ge=1, le=16, description="Replication of new topics.")

    # ClickHouse
    clickhouse_url: str | None = Field(
        None,
        description="chdb:///path (embedded; default <data_dir>/clickhouse) or "
        "http(s)://user:pass@host:port/database for a ClickHouse server.",
    )
    clickhouse_cluster: str | None = Field(
        None,
        description="ClickHouse cluster name (remote_servers): the log table becomes a "
        "ReplicatedReplacingMergeTree on every node with a Distributed table in front.",
    )
    retention_days: int = Field(90, ge=1, le=36_500, description="Log store TTL in days.")

    # Ingest
    ingest_group: str = Field("authtrail-ingest", description="Ingest worker's consumer group.")
    ingest_batch_size: int = Field(5000, ge=1, le=100_000, description="Max events per batch.")
    ingest_normalizer_processes: int = Field(
        1,
        ge=0,
        le=64,
        description="Child processes that normalize batches (0: in the worker process). "
        "The worker is bound by one Python thread; a child moves normalization off it.",
    )
    max_event_bytes: int = Field(
        262_144, ge=1024, description="Raw events larger than this are dead-lettered."
    )

    secret_key: SecretStr | None = Field(
        None,
        description="Key that signs sessions and encrypts stored secrets (at least 32 "
        "random characters: openssl rand -base64 48); unset: generated once into "
        "<data_dir>/secret.key. Set the same value on every replica.",
    )
    secret_key_previous: SecretStr | None = Field(
        None,
        description="During a key rotation: the former key(s), comma-separated, still "
        "accepted to open stored secrets and verify sessions (never to write); remove "
        "once 'authtrail secrets rotate' has run.",
    )

    # Connectors
    connector_linger_seconds: float = Field(
        1.0, gt=0, le=60, description="How long a connector waits to fill a batch."
    )
    connector_max_in_flight: int = Field(
        4, ge=1, le=64, description="Batches a destination sends at once (committed in order)."
    )
    connector_auth_recheck_seconds: float = Field(
        30.0, gt=0, le=3600, description="How often refused credentials are re-checked."
    )
    connector_stall_seconds: float = Field(
        60.0,
        ge=5,
        le=3600,
        description="A destination with events waiting that made no progress this long while "
        "the broker answers (and not failing: it retries then) is stalled: shown so, told to "
        "the notification channels, and its consumer replaced.",
    )
    notification_interval_seconds: float = Field(
        300.0,
        gt=0,
        le=86_400,
        description="At most one notification per destination this often (changes in "
        "between are told together, with their count).",
    )

    # Query API
    api_host: str = Field("127.0.0.1", description="Query API bind address.")
    api_port: Port = Field(8080, description="Query API port.")
    public_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="The page's address as users reach it (a load balancer, an ingress), "
        "for sign-in links; default: http://<AUTHTRAIL_API_HOST>:<AUTHTRAIL_API_PORT>.",
    )
    api_trusted_proxies: str = Field(
        "",
        description="Addresses or networks (comma-separated, e.g. 10.0.0.0/8,fd00::/8) of the "
        "reverse proxies in front of the API: from these alone X-Forwarded-Proto and "
        "X-Forwarded-For are believed (the Secure cookie, the per-address sign-in limit). "
        "Empty: none, the peer's own address and scheme count.",
    )
    embed_allowed_origins: str = Field(
        "",
        description="Origins (comma-separated, e.g. https://admin.example.com) whose pages may "
        "show the embeddable viewer (/embed) in an iframe: its Content-Security-Policy "
        "frame-ancestors. Empty: no page may.",
    )
    api_rate_limit: float = Field(
        20.0,
        ge=0,
        description="Requests per second each token may make, sustained (0: no limit). "
        "Failed sign-ins are limited per client address alike. Per API process.",
    )
    api_rate_burst: int = Field(
        100, ge=1, le=100_000, description="Requests a token may make at once above the rate."
    )
    api_max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body the API reads (else 413)."
    )
    api_query_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Longest a single log store query of the API may run (else 503).",
    )
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        9464, description="Prometheus /metrics of 'authtrail connectors run' (0: off)."
    )

    @field_validator("data_dir", "cache_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("secret_key")
    @classmethod
    def _strong_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_key_strength(value.get_secret_value())
        return value

    @field_validator("api_trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        items = [item.strip() for item in value.split(",") if item.strip()]
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (e.g. 10.0.0.0/8, 10.1.2.3)"
                ) from None
        return ",".join(items)

    @field_validator("embed_allowed_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        items = [item.strip().rstrip("/") for item in value.split(",") if item.strip()]
        for item in items:
            if not _ORIGIN.fullmatch(item):
                raise ValueError(
                    f"{item[:80]!r} is not an origin: scheme, host and optional port "
                    "(https://admin.example.com, http://127.0.0.1:8081), nothing else"
                )
        return ",".join(items)

    @property
    def embed_origins(self) -> tuple[str, ...]:
        return tuple(item for item in self.embed_allowed_origins.split(",") if item)

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                "AUTHTRAIL_KAFKA_SASL_USERNAME and AUTHTRAIL_KAFKA_SASL_PASSWORD are required "
                f"with AUTHTRAIL_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
            )
        return self

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka settings every confluent-kafka client of this installation uses."""
        config = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol.startswith("SASL_"):
            assert self.kafka_sasl_username and self.kafka_sasl_password  # checked above
            config["sasl.mechanism"] = self.kafka_sasl_mechanism
            config["sasl.username"] = self.kafka_sasl_username
            config["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_ca_file is not None:
            config["ssl.ca.location"] = str(self.kafka_ssl_ca_file)
        if self.kafka_debug:
            config["debug"] = self.kafka_debug
        return config

    @property
    def topics(self) -> Topics:
        return Topics.with_prefix(self.topic_prefix)

    @property
    def embedded_kafka(self) -> bool:
        return not self.kafka_bootstrap

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def resolved_clickhouse_url(self) -> str:
        return self.clickhouse_url or f"chdb://{self.data_dir / 'clickhouse'}"

    @property
    def api_connect_host(self) -> str:
        """Where a client on this machine reaches the API (a wildcard bind -> loopback)."""
        return "127.0.0.1" if self.api_host in ("0.0.0.0", "::") else self.api_host  # noqa: S104

    @property
    def api_url(self) -> str:
        """Where users reach the page and API (sign-in links)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.api_connect_host}:{self.api_port}"


_ORIGIN = re.compile(r"https?://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for logs and errors)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
