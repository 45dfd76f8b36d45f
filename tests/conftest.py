"""Session-wide: the secrets-in-logs scan (see ``tests/leaks.py``)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests import leaks

# Loggers that could carry a secret: ours, and httpx (it logs each request's URL, and a
# Sumo Logic source URL is a secret). Recorded at every level for the scan.
SCANNED_LOGGERS = ("authtrail", "pipeline", "connectors", "query_api", "schemas", "httpx")
ARTIFACTS = Path(__file__).with_name("artifacts")
_handler = leaks.CapturingHandler()
_basetemp: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    _handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(_handler)
    for name in SCANNED_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)


@pytest.fixture(scope="session", autouse=True)
def _remember_basetemp(tmp_path_factory: pytest.TempPathFactory) -> None:
    _basetemp.append(tmp_path_factory.getbasetemp())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    files = [p for base in _basetemp for p in base.rglob("*") if _is_log(p)]
    files += [p for p in ARTIFACTS.glob("*") if p.is_file() and p.suffix in (".md", ".txt")]
    found = leaks.find(leaks.secrets(), files)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"secrets in logs: {len(leaks.secrets())} test secrets, {len(files)} log files "
            f"and every log record of the test process scanned: {len(found)} found"
        )
        for finding in found[:50]:
            reporter.write_line(f"  SECRET LOGGED {finding}", red=True)
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _is_log(path: Path) -> bool:
    return path.is_file() and (path.suffix == ".log" or path.name.endswith(".log.1"))
