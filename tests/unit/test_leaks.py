"""The secrets-in-logs scan finds a secret wherever the suite could have written it."""

from __future__ import annotations

import logging
from pathlib import Path

from tests import leaks


def test_the_scan_finds_a_secret_in_a_record_in_output_and_in_a_file(tmp_path: Path) -> None:
    secret = "scan-selftest-0f3a9c1e77"
    other = "scan-selftest-never-written"
    handler = leaks.CapturingHandler()
    logger = logging.getLogger("tests.leaks.selftest")
    logger.addHandler(handler)
    try:
        logger.warning("connecting with %s", secret)
    finally:
        logger.removeHandler(handler)
    log = tmp_path / "worker.log"
    log.write_text(f"line one\nsent token={secret}\n")
    found = leaks.find([secret, other], [log])
    assert any(f.startswith("log record #") for f in found)
    assert f"{log}:2: sca…" in found
    assert not any(other[:3] + "…" in f and "never" in f for f in found)
    assert all(secret not in f for f in found)  # the report itself shows no secret
