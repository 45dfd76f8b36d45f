"""What the deployment tests validate with, fetched and built by the tests themselves
(idempotent, cached): ``deploy/tools/deploycheck``, built with Go, which runs the
libraries Docker itself runs (compose-go, behind `docker compose config`; BuildKit's
Dockerfile parser and build checks), and KEDA's CRDs (from the KEDA Go module, through
the Go module proxy). Kubernetes' own schemas come
with the ``kubernetes-validate`` package."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "deploy-tools"
KEDA_MODULE = "github.com/kedacore/keda/v2@v2.21.0"


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("the deployment tests need Go (to build deploycheck, fetch KEDA)")
    return go


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
