"""Session-wide: the secrets-in-logs scan (``tests/leaks.py``) and the check that the run
leaves no process behind (``tests/processes.py``)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests import leaks, processes

# Loggers that could carry a secret: ours, and httpx (it logs each request's URL, and a
# Sumo Logic source URL is a secret). Recorded at every level for the scan.
SCANNED_LOGGERS = ("authtrail", "pipeline", "connectors", "query_api", "schemas", "httpx")
ARTIFACTS = Path(__file__).with_name("artifacts")
_handler = leaks.CapturingHandler()
_basetemp: list[Path] = []
# How long processes the suite stopped may take to end before they count as left behind.
PROCESS_GRACE_S = 20.0
_run: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    _run.append(processes.mark_session())
    _handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(_handler)
    for name in SCANNED_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)


# Run last: they wait for promtool, which `make test` builds in the background meanwhile.
LAST = ("tests/deploy/test_prometheus.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.nodeid.startswith(LAST))  # stable: the rest keep order


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
    _check_no_process_left(session)


def _check_no_process_left(session: pytest.Session) -> None:
    left = processes.reap(_run[0], PROCESS_GRACE_S)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"processes left behind by the suite: {len(left)}")
        for survivor in left:
            reporter.write_line(f"  LEFT RUNNING (now killed) {survivor}", red=True)
    if left:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _is_log(path: Path) -> bool:
    return path.is_file() and (path.suffix == ".log" or path.name.endswith(".log.1"))
