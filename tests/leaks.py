"""The suite's check that no secret ever reaches a log: every secret the tests hand the
product (platform credentials, API tokens) is registered here; every log record of the
test process, every CLI run's output and every log file the suite's processes write
(``authtrail up``, the connectors, the ingest worker, the Kafka broker) is scanned for
them when the session ends (``tests/conftest.py``), and a hit fails the run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path

# Shorter values could occur by chance in unrelated text.
MIN_SECRET_LEN = 12

_secrets: set[str] = set()
_lines: list[str] = []
_lock = threading.Lock()


def register(*values: str) -> None:
    """Marks ``values`` as secrets that must never be logged."""
    with _lock:
        _secrets.update(v for v in values if len(v) >= MIN_SECRET_LEN)


def secrets() -> frozenset[str]:
    with _lock:
        return frozenset(_secrets)


def record(text: str) -> None:
    """Keeps output the scan should see (a CLI run's stdout and stderr)."""
    with _lock:
        _lines.append(text)


class CapturingHandler(logging.Handler):
    """Keeps every log record of the test process, formatted with its traceback."""

    def emit(self, record_: logging.LogRecord) -> None:
        try:
            text = self.format(record_)
        except Exception:  # a record that cannot be formatted still must be scanned
            text = f"{record_.msg!r} {record_.args!r}"
        record(text)


def mask(secret: str) -> str:
    return secret[:3] + "…"


def find(secret_values: Iterable[str], files: Iterable[Path]) -> list[str]:
    """Where any of ``secret_values`` occurs: captured records and output, then
    ``files``. Each finding names the place and the secret's first characters only."""
    values = [s for s in secret_values if s]
    found: list[str] = []
    with _lock:
        captured = list(_lines)
    for number, text in enumerate(captured):
        found += [f"log record #{number}: {mask(s)}" for s in values if s in text]
    for path in files:
        try:
            content = path.read_text(errors="replace")
        except OSError:
            continue
        for s in values:
            if s in content:
                line = next(i for i, text in enumerate(content.splitlines(), 1) if s in text)
                found.append(f"{path}:{line}: {mask(s)}")
    return found
