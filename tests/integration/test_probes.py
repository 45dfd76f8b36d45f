"""The probes Kubernetes and Compose use are real: ``authtrail ingest`` and ``authtrail
connectors run`` serve ``/livez``, ``/readyz`` and ``/metrics`` on their metrics port, the
API serves ``/livez`` and ``/healthz``, and ``authtrail probe`` (the containers' health
check) exits 0 only on a 2xx."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.integration.conftest import AUTHTRAIL, free_port, run_cli, shared_broker_env
from tests.integration.streaming import wait_until


@pytest.fixture
def env(kafka_bootstrap: str, tmp_path: Path) -> dict[str, str]:
    environment = shared_broker_env(tmp_path / "var", kafka_bootstrap, "probe")
    created = run_cli(environment, "topics", "create")
    assert created.returncode == 0, created.stderr
    return environment


@contextmanager
def running(env: dict[str, str], *args: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen([AUTHTRAIL, *args], env=env, stdout=out, stderr=out)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(90) == 0, log.read_text()[-3000:]


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize(
    ("role", "metric"),
    [(("ingest",), "authtrail_ingest_"), (("connectors", "run"), "authtrail_connector")],
    ids=["ingest", "connectors"],
)
def test_worker_processes_serve_probes_and_metrics(
    env: dict[str, str], tmp_path: Path, role: tuple[str, ...], metric: str
) -> None:
    base = f"http://127.0.0.1:{env['AUTHTRAIL_METRICS_PORT']}"
    with running(env, *role, log=tmp_path / "process.log"):
        assert wait_until(lambda: answers(f"{base}/readyz"), timeout=120), (
            tmp_path / "process.log"
        ).read_text()[-3000:]
        assert httpx.get(f"{base}/livez").json() == {"status": "ok"}
        health = httpx.get(f"{base}/healthz").json()
        if role[0] == "connectors":  # the destinations' states, the stalled ones named
            assert health["stream"] == {"destinations": {}, "stalled": []}, health
        else:
            assert "ingest" in health, health
        assert metric in httpx.get(f"{base}/metrics").text
        assert httpx.get(f"{base}/nowhere").status_code == 404
        probe = run_cli(env, "probe", f"{base}/readyz")
        assert probe.returncode == 0, probe.stderr


def test_probe_fails_on_an_error_or_nothing_listening(env: dict[str, str]) -> None:
    dead = run_cli(env, "probe", f"http://127.0.0.1:{free_port()}/readyz")
    assert dead.returncode == 1 and "ConnectError" in dead.stderr


def test_a_taken_metrics_port_is_a_clear_error(env: dict[str, str], tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        blocked = run_cli({**env, "AUTHTRAIL_METRICS_PORT": str(port)}, "connectors", "run")
    assert blocked.returncode == 1
    assert "AUTHTRAIL_METRICS_PORT" in blocked.stderr


def test_the_api_is_alive_apart_from_the_store(api_client: TestClient) -> None:
    assert api_client.get("/livez").json() == {"status": "ok"}
    assert api_client.get("/healthz").json()["status"] == "ok"
