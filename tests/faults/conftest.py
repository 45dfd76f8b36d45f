"""The fault suite's broker (its own: one test stops it) and its summary table, printed
at the end of the run and written to ``tests/artifacts/faults-summary.md``.

``make test`` runs the suite at its reduced size; ``make faults`` at full size
(``AUTHTRAIL_FAULTS_SIZE=full``: 100,000 events per fault, 30 s broker and store outages,
a 60 s platform outage)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import RESULTS, Broker, Size, Trail, size_from_env, summary_table

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="session")
def size() -> Size:
    return size_from_env()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    instance = Broker(tmp_path_factory.mktemp("faults-kafka"))
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def trail(broker: Broker, tmp_path: Path, size: Size) -> Iterator[Trail]:
    instance = Trail(broker, tmp_path, size)
    instance.start()
    yield instance
    instance.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    table = summary_table(RESULTS)
    terminalreporter.section("fault injection: every event stored once, delivered everywhere")
    terminalreporter.write_line(table)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "faults-summary.md").write_text(table + "\n")
