"""Integration fixtures: one genuine Kafka broker for the session (started and stopped
through the CLI, as a user would), and helpers that run ``authtrail`` as a subprocess.

Set ``AUTHTRAIL_KAFKA_BOOTSTRAP`` to run the suite against an existing cluster instead."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer
from fastapi import FastAPI
from fastapi.testclient import TestClient

from infra.clickhouse.client import connect, migrate
from infra.kafka.topic_admin import ensure_topics
from infra.secrets import load_keyring
from query_api.app import create_app
from query_api.auth import SessionSigner
from query_api.limits import ApiLimits
from query_api.repository import LogRepository
from query_api.routes.deps import StreamContext
from query_api.tokens import TokenLog, create_token, revoke_token
from schemas.log_store import MIGRATIONS, StoreLocation
from schemas.settings import Settings
from tests import leaks
from tests.integration.aws import Aws

BIN = Path(sys.executable).parent
AUTHTRAIL = str(BIN / "authtrail")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The log store's retention in the suite. chDB keeps the real clock under
# tests/clock/shifted-clock.sh (it is linked statically: libfaketime cannot reach it), and
# ClickHouse drops at insert rows already past their TTL, so a run with the clock moved a
# year back sets AUTHTRAIL_RETENTION_DAYS above a year.
RETENTION_DAYS = int(os.environ.get("AUTHTRAIL_RETENTION_DAYS", "90"))


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHTRAIL_")}
    env.update(
        {
            "AUTHTRAIL_DATA_DIR": str(data_dir),
            "AUTHTRAIL_TOPIC_PARTITIONS": "3",
            "AUTHTRAIL_METRICS_PORT": str(free_port()),
            "AUTHTRAIL_RETENTION_DAYS": str(RETENTION_DAYS),
        }
    )
    env.update(extra)
    return env


def shared_broker_env(data_dir: Path, bootstrap: str, name: str, **extra: str) -> dict[str, str]:
    """The environment of an `authtrail up` on the session broker: its own topic prefix,
    ingest group and API port, quick flushes."""
    prefix = f"{name}{uuid.uuid4().hex[:8]}."
    return base_env(
        data_dir,
        AUTHTRAIL_KAFKA_BOOTSTRAP=bootstrap,
        AUTHTRAIL_TOPIC_PREFIX=prefix,
        AUTHTRAIL_INGEST_GROUP=f"{prefix}ingest",
        AUTHTRAIL_API_PORT=str(free_port()),
        **extra,
    )


def run_cli(
    env: dict[str, str], *args: str, stdin: bytes | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [AUTHTRAIL, *args],
        env=env,
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    leaks.record(result.stdout + result.stderr)
    return result


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("AUTHTRAIL_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    data_dir = tmp_path_factory.mktemp("kafka")
    port, controller = free_port(), free_port()
    env = base_env(
        data_dir, AUTHTRAIL_KAFKA_PORT=str(port), AUTHTRAIL_KAFKA_CONTROLLER_PORT=str(controller)
    )
    started = run_cli(env, "kafka", "start")
    assert started.returncode == 0, started.stderr + started.stdout
    status = run_cli(env, "kafka", "status")
    assert status.returncode == 0 and "answering" in status.stdout, status.stdout
    yield f"127.0.0.1:{port}"
    stopped = run_cli(env, "kafka", "stop")
    assert stopped.stdout.strip() == "stopped", stopped.stdout + stopped.stderr


class Authtrail:
    """``authtrail up`` as a subprocess on its own data dir, topic prefix and ports."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.env = env
        self.api = f"http://127.0.0.1:{env['AUTHTRAIL_API_PORT']}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "up.log"
        self.token: str | None = None

    def start(self, *args: str, timeout: float = 150) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [AUTHTRAIL, "up", *args], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"authtrail up exited {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.api}/healthz", timeout=2).status_code == 200:
                    self._remember_first_admin_token()
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        pytest.fail(f"authtrail up did not become healthy:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 90) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self.process = None
        return code

    def _remember_first_admin_token(self) -> None:
        """The admin token `authtrail up` printed on its first run (login URL)."""
        match = re.search(r"/login#token=(at_[A-Za-z0-9_-]+)", self.log_path.read_text())
        if match and self.token is None:
            self.token = match.group(1)
        assert self.token, f"no first-run admin token in the output:\n{self.log()}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def logs(self, **params: Any) -> dict[str, Any]:
        response = httpx.get(
            f"{self.api}/api/v1/logs", params=params, headers=self.headers, timeout=10
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def wait_for_rows(self, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        items: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            items = self.logs(limit=500)["items"]
            if len(items) >= count:
                return items
            time.sleep(0.3)
        pytest.fail(f"expected {count} rows, have {len(items)}:\n{self.log()}")

    def produce(self, lines: list[bytes]) -> subprocess.CompletedProcess[str]:
        return run_cli(self.env, "produce", "-", stdin=b"\n".join(lines) + b"\n")

    def __enter__(self) -> Authtrail:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def authtrail(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Authtrail]:
    """A fresh authtrail on the session broker: its own topics (prefix), group, chDB."""
    env = shared_broker_env(tmp_path / "var", kafka_bootstrap, "t")
    with Authtrail(tmp_path / "var", env) as instance:
        yield instance


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list[Any]:
    """Reads ``expected`` records of ``topic`` from the beginning (or fails)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                records.append(message)
    finally:
        consumer.close()
    assert len(records) >= expected, f"{topic}: {len(records)} of {expected} records"
    return records


def event(key: str, **fields: Any) -> bytes:
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_key": key,
        "occurred_at": int(time.time() * 1000),
    }
    body.update(fields)
    return orjson.dumps(body)


# -- in-process API over a known data set ---------------------------------------------------
# chDB holds one data directory per process: every in-process test shares this one.


@pytest.fixture(scope="session")
def api_settings(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("api"),
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"api{uuid.uuid4().hex[:8]}.",
        topic_partitions=3,
    )
    ensure_topics(settings)
    return settings


# The storage and query tests run on embedded chDB, and also on a ClickHouse server (and
# cluster) when these are set: AUTHTRAIL_TEST_CLICKHOUSE_URL=http://user:pass@host:8123
# (each session uses a database of its own, dropped at the end), and optionally
# AUTHTRAIL_TEST_CLICKHOUSE_CLUSTER=<remote_servers name>.
SERVER_URL = os.environ.get("AUTHTRAIL_TEST_CLICKHOUSE_URL")
SERVER_CLUSTER = os.environ.get("AUTHTRAIL_TEST_CLICKHOUSE_CLUSTER") or None
NO_SERVER = (
    "AUTHTRAIL_TEST_CLICKHOUSE_URL is not set: the storage and query tests ran on embedded "
    "chDB only (set it to a ClickHouse server to run them there too)"
)


@pytest.fixture(scope="session", params=["chdb", "server"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StoreLocation]:
    if request.param == "chdb":
        url = f"chdb://{tmp_path_factory.mktemp('chdb') / 'clickhouse'}"
        location = StoreLocation.parse(url)
    else:
        if not SERVER_URL:
            pytest.skip(NO_SERVER)
        parts = urlsplit(SERVER_URL)
        database = f"authtrail_test_{uuid.uuid4().hex[:8]}"
        url = urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))
        location = StoreLocation.parse(url, SERVER_CLUSTER)
    assert migrate(connect(location), location, RETENTION_DAYS) == [m.version for m in MIGRATIONS]
    assert migrate(connect(location), location, RETENTION_DAYS) == []  # idempotent
    yield location
    if not location.embedded:
        client = connect(location)
        client.command(f"DROP DATABASE IF EXISTS {location.database}{location.on_cluster} SYNC")
        client.close()


@pytest.fixture
def own_database(store: StoreLocation) -> Iterator[tuple[StoreLocation, Client]]:
    """A database of its own in the session's store (for tests that change the table
    itself: its TTL, its rows by UPDATE), not migrated, and a client of it; dropped after."""
    location = StoreLocation(store.url, f"own_{uuid.uuid4().hex[:8]}", store.cluster)
    client = connect(location)
    try:
        yield location, client
    finally:
        client.command(f"DROP DATABASE IF EXISTS {location.database}{location.on_cluster} SYNC")
        client.close()


@pytest.fixture(scope="session")
def token_log(api_settings: Settings) -> Iterator[TokenLog]:
    view = TokenLog(api_settings).start()
    yield view
    view.stop()


@pytest.fixture(scope="session")
def tokens(api_settings: Settings, token_log: TokenLog) -> dict[str, str]:
    """Plaintext tokens by kind: admin, viewer, scoped (acc_1 only), producer, revoked."""
    made = {
        "producer": create_token(api_settings, "producer", "test producer")[0],
        "admin": create_token(api_settings, "admin", "test admin")[0],
        "viewer": create_token(api_settings, "viewer", "test viewer")[0],
        "scoped": create_token(api_settings, "viewer", "acc_1 viewer", "acc_1")[0],
    }
    revoked, record = create_token(api_settings, "viewer", "revoked viewer")
    assert token_log.catch_up()
    revoke_token(api_settings, token_log, record.id)
    assert token_log.catch_up()
    made["revoked"] = revoked
    leaks.register(*made.values())
    return made


@pytest.fixture(scope="session")
def api_app(store: StoreLocation, token_log: TokenLog, api_settings: Settings) -> Iterator[FastAPI]:
    repository = LogRepository(store, query_timeout_s=30)
    stream = StreamContext.open(api_settings)
    # schemathesis and the paging tests ask far faster than any person: the limits have
    # their own tests.
    yield create_app(
        repository,
        token_log,
        SessionSigner(load_keyring(api_settings)),
        stream=stream,
        limits=ApiLimits(rate=0),
        apply_wait_s=0.0,  # no ingest worker here applies retention or erasures: look once
    )
    stream.stop()
    repository.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def api_client(api_app: FastAPI) -> Iterator[TestClient]:
    """A client of the in-process API (whatever data the session store holds)."""
    with TestClient(api_app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    """moto's server (EventBridge and SQS), for the module."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield Aws(f"http://127.0.0.1:{port}")
    server.stop()
