"""``docker-compose.yml``, ``.env.example`` and the ``Dockerfile``: the Compose file loads
with the specification's own loader (``deploycheck compose``, and ``docker compose
config`` where the plugin is installed), the Dockerfile passes BuildKit's parser and
build checks, every long-running service has a health check on a real
endpoint, nothing secret is in the file, and the image is multi-stage, small and
non-root, one image for every role."""

from __future__ import annotations

import re
import subprocess
import tomllib
from typing import Any

import pytest
import yaml

from schemas.settings import Settings
from tests.deploy.tools import ROOT, deploycheck

COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
APP_SERVICES = {"setup", "ingest", "api", "connectors", "demo"}
LONG_RUNNING = {"ingest", "api", "connectors"}


def resolved(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(deploycheck()), "compose", "-f", str(COMPOSE), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    loaded = resolved("--env-file", str(ENV_EXAMPLE), "--profile", "demo")
    assert loaded.returncode == 0, loaded.stderr
    result: dict[str, Any] = yaml.safe_load(loaded.stdout)
    return result


def test_the_compose_file_loads_with_the_example_env(project: dict[str, Any]) -> None:
    assert set(project["services"]) == {"kafka", "clickhouse"} | APP_SERVICES
    without_demo = resolved("--env-file", str(ENV_EXAMPLE))
    assert without_demo.returncode == 0, without_demo.stderr
    assert "demo" not in yaml.safe_load(without_demo.stdout)["services"]  # a profile


def test_without_the_secrets_it_refuses_naming_them() -> None:
    refused = resolved()
    assert refused.returncode != 0
    assert re.search(r"CLICKHOUSE_PASSWORD|AUTHTRAIL_SECRET_KEY", refused.stderr), refused.stderr


def test_docker_compose_config_where_the_client_exists() -> None:
    version = (
        subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, check=False
        )
        if _has_docker()
        else None
    )
    if version is None or version.returncode != 0:
        pytest.skip("no `docker compose` plugin here: deploycheck (compose-go) checked it")
    checked = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE), "config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


def _has_docker() -> bool:
    try:
        subprocess.run(["docker", "--version"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return False
    return True


def test_services_have_health_checks_on_real_endpoints(project: dict[str, Any]) -> None:
    services = project["services"]
    assert services["kafka"]["image"] == f"apache/kafka:{Settings().kafka_version}"
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    for name in ("kafka", "clickhouse", *LONG_RUNNING):
        assert services[name]["healthcheck"]["test"], name
    probes = {name: services[name]["healthcheck"]["test"] for name in LONG_RUNNING}
    assert probes["api"][-1] == "http://127.0.0.1:8080/healthz"
    assert probes["ingest"][-1] == probes["connectors"][-1] == "http://127.0.0.1:9464/readyz"
    for name in LONG_RUNNING:
        assert probes[name][:3] == ["CMD", "authtrail", "probe"]
        depends = services[name]["depends_on"]
        assert depends["setup"]["condition"] == "service_completed_successfully"
        assert depends["kafka"]["condition"] == depends["clickhouse"]["condition"]
    # The data of record lives in named volumes.
    assert {"kafka-data", "clickhouse-data"} <= set(project["volumes"])


def test_one_image_for_every_role_non_root_read_only(project: dict[str, Any]) -> None:
    services = project["services"]
    images = {services[name]["image"] for name in APP_SERVICES}
    assert images == {"authtrail:latest"}
    for name in APP_SERVICES:
        assert services[name]["read_only"] is True
        assert "no-new-privileges:true" in services[name]["security_opt"]


def test_no_secret_in_the_compose_file() -> None:
    text = COMPOSE.read_text()
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert {"AUTHTRAIL_SECRET_KEY", "CLICKHOUSE_PASSWORD"} <= set(example)
    for value in example.values():
        assert value not in text
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_the_dockerfile_passes_buildkits_checks() -> None:
    checked = subprocess.run(
        [str(deploycheck()), "dockerfile", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "2 stages"


def test_the_dockerfile_is_multi_stage_small_and_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text, re.MULTILINE)
    assert len(stages) == 2 and stages[0][1] == "build"
    assert all("slim" in image for image, _ in stages)
    final = text[text.rindex("\nFROM ") :]
    assert "COPY --from=build /opt/authtrail /opt/authtrail" in final
    assert re.search(r"^USER 10001:10001$", final, re.MULTILINE)
    assert 'ENTRYPOINT ["authtrail"]' in final
    # The embedded store (chDB, 0.5 GB) is an extra the image leaves out.
    assert "pip install ." in text and "[embedded" not in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("chdb") for d in project["dependencies"])
    assert project["optional-dependencies"]["embedded"] == ["chdb>=3.0"]
    ignored = [
        line for line in (ROOT / ".dockerignore").read_text().splitlines() if line[:1] not in "#"
    ]
    assert ignored[0] == "*" and "!tests/" not in ignored and "!.venv/" not in ignored
