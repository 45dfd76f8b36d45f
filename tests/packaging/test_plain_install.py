"""The product as its users install it: the wheel, without extras, in a fresh virtual
environment that has nothing but what the wheel declares.

Catches what the development environment hides: a run-time import that only a dev or
optional extra happens to pull in (boto3 arrived through moto), test fakes shipped in
the wheel with dependencies it does not declare, a command that cannot start."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from schemas.platforms import SETTINGS_MODELS
from tests.samples import VALID_SETTINGS

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ("authtrail", "schemas", "infra", "pipeline", "query_api", "connectors")
# What the wheel is built from: the repository without its local state.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "var", ".cache", "build", "dist", "*.egg-info", "__pycache__",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", "artifacts", "bench", "tests",
    "target", "*.so",
)  # fmt: skip
# The Rust build's cache (the native module is compiled as for any install; only its
# dependencies' artifacts are reused, not copied).
CARGO_TARGET = ROOT / "connectors" / "pii_native" / "target"

# Run inside the fresh environment: import every module of the wheel, build a sink for
# every registered platform from a sample destination.
CHECK = """
import importlib, json, sys, zipfile
from connectors.sinks import build_sink
from schemas.platforms import SETTINGS_MODELS
from schemas.destinations import make_destination

wheel, samples = sys.argv[1], json.loads(sys.argv[2])
modules = sorted(
    name[:-3].replace("/", ".").removesuffix(".__init__")
    for name in zipfile.ZipFile(wheel).namelist()
    if name.endswith(".py")
)
for module in modules:
    importlib.import_module(module)
importlib.import_module("connectors.sinks._pii")  # the PII rules' native pass
built = []
for platform in SETTINGS_MODELS:
    sink = build_sink(make_destination(platform, "plain install", samples[platform]))
    sink.close()
    built.append(platform)
print(json.dumps({"modules": modules, "sinks": built}))
"""


@dataclass(frozen=True)
class Installed:
    wheel: Path
    bin: Path

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.bin
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("plain-install")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(base), "."],
        cwd=source,
        env={**os.environ, "CARGO_TARGET_DIR": str(CARGO_TARGET)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = base.glob("authtrail-*.whl")
    venv.EnvBuilder(with_pip=True).create(base / "venv")
    bin_dir = base / "venv" / "bin"
    pip = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    yield Installed(wheel, bin_dir)


def test_the_wheel_holds_the_product_and_no_test_code(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    packages = {name.split("/")[0] for name in names if not name.startswith("authtrail-")}
    assert packages == set(PRODUCT_PACKAGES)
    assert not [name for name in names if "platform_fakes" in name or "/tests/" in name]
    assert "query_api/static/index.html" in names
    for platform in SETTINGS_MODELS:  # the Stream tab's card of each platform
        assert f"query_api/static/platforms/{platform}.svg" in names, platform
    assert "schemas/jsonschema/raw-event-v1.schema.json" in names
    assert [n for n in names if re.fullmatch(r"connectors/sinks/_pii\..*so", n)], names


def test_dependencies_are_consistent(installed: Installed) -> None:
    checked = installed.run(str(installed.bin / "python"), "-m", "pip", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_module_imports_and_every_platform_builds(installed: Installed) -> None:
    assert set(VALID_SETTINGS) == set(SETTINGS_MODELS), "a sample per registered platform"
    checked = installed.run(
        str(installed.bin / "python"),
        "-c",
        CHECK,
        str(installed.wheel),
        json.dumps(VALID_SETTINGS),
    )
    assert checked.returncode == 0, checked.stderr[-4000:]
    result = json.loads(checked.stdout.strip().splitlines()[-1])
    assert sorted(result["sinks"]) == sorted(SETTINGS_MODELS)
    for package in PRODUCT_PACKAGES:
        assert package in result["modules"]


@pytest.mark.parametrize(
    "command",
    [(), ("connectors", "run"), ("ingest",), ("api",), ("up",), ("destinations", "add")],
    ids=lambda argv: " ".join(argv) or "authtrail",
)
def test_commands_start(installed: Installed, command: tuple[str, ...]) -> None:
    helped = installed.run(str(installed.bin / "authtrail"), *command, "--help")
    assert helped.returncode == 0, helped.stderr[-4000:]
    assert "Usage: authtrail" in helped.stdout
