"""The alerting rules in deploy/prometheus/ as Prometheus reads them: ``promtool check
rules`` accepts the file, and ``promtool test rules`` runs its unit tests (each rule firing
on the series it is about, and not on those it is not)."""

from __future__ import annotations

import subprocess

from tests.deploy.tools import ROOT, promtool

RULES = ROOT / "deploy" / "prometheus"


def test_rules_are_valid() -> None:
    checked = subprocess.run(
        [str(promtool()), "check", "rules", "alerts.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout + checked.stderr


def test_rules_unit_tests_pass() -> None:
    tested = subprocess.run(
        [str(promtool()), "test", "rules", "alerts.test.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
