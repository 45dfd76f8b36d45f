"""Suspension as data: ``suspend_after`` from the CLI's and the API's forms, its bounds,
kept across edits; a suspended destination's state; the supervisor suspends only a
destination failing (not refused credentials) for longer than its own delay."""

from __future__ import annotations

import time
from typing import Any

import pytest

from connectors.admin.status import summarize
from connectors.runtime.supervisor import ConnectorRuntime
from schemas.destinations import (
    DEFAULT_SUSPEND_AFTER_S,
    DestinationError,
    make_destination,
    updated_destination,
)
from schemas.events import utc_now_ms
from tests.samples import VALID_SETTINGS

DD = VALID_SETTINGS["datadog"]


@pytest.mark.parametrize(
    ("given", "seconds"),
    [
        (None, DEFAULT_SUSPEND_AFTER_S),
        ("90", 90),
        (3600, 3600),
        ("30m", 1800),
        ("12h", 43_200),
        ("7d", 604_800),
    ],
)
def test_suspend_after_forms(given: Any, seconds: int) -> None:
    values = dict(DD) if given is None else {**DD, "suspend_after": given}
    assert make_destination("datadog", "d", values).suspend_after_s == seconds


@pytest.mark.parametrize("given", ["soon", "-5", "1w", "2", 366 * 86_400])
def test_bad_suspend_after_names_the_field(given: Any) -> None:
    with pytest.raises(DestinationError) as refused:
        make_destination("datadog", "d", {**DD, "suspend_after": given})
    assert refused.value.field == "suspend_after"


def test_edits_keep_the_delay_and_the_suspension() -> None:
    made = make_destination("datadog", "d", {**DD, "suspend_after": "1h"})
    suspended = made.model_copy(update={"suspended_at": utc_now_ms()})
    edited = updated_destination(suspended, "renamed", {"tags": "team:iam"})
    assert edited.suspend_after_s == 3600 and edited.suspended_at == suspended.suspended_at
    assert summarize(suspended, [], None, time.time())["state"] == "suspended"
    paused = suspended.model_copy(update={"paused": True})
    assert summarize(paused, [], None, time.time())["state"] == "paused"


class FakeStatus:
    def __init__(self, state: str, failing_since: float | None) -> None:
        self.state = state
        self.failing_since = failing_since
        self.last_error = "HTTP 503"


class FakeWorker:
    def __init__(self, destination: Any, state: str, failing_since: float | None) -> None:
        self.destination = destination
        self.status = FakeStatus(state, failing_since)


class RecordingStore:
    def __init__(self) -> None:
        self.suspended: list[str] = []

    def suspend(self, destination_id: str) -> object:
        self.suspended.append(destination_id)
        return object()


def test_supervisor_suspends_only_what_failed_longer_than_its_delay() -> None:
    now = time.time()
    quick = make_destination("datadog", "quick", {**DD, "suspend_after": "60"})
    slow = make_destination("datadog", "slow", {**DD, "suspend_after": "1h"})
    creds = make_destination("datadog", "creds", {**DD, "suspend_after": "60"})
    fine = make_destination("datadog", "fine", {**DD, "suspend_after": "60"})
    runtime = ConnectorRuntime.__new__(ConnectorRuntime)
    store = RecordingStore()
    workers = {
        quick.id: FakeWorker(quick, "failing", now - 61),
        slow.id: FakeWorker(slow, "failing", now - 61),
        creds.id: FakeWorker(creds, "auth_failed", now - 3600),
        fine.id: FakeWorker(fine, "healthy", None),
    }
    runtime._store = store  # type: ignore[assignment]
    runtime.workers = lambda: workers  # type: ignore[assignment,method-assign,return-value]
    runtime._suspend_overdue()
    assert store.suspended == [quick.id]
