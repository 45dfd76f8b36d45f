"""How ``LogRepository`` lends its clients (#16 item 6): one call at a time per client,
nothing held between an export's steps, and ``close()`` against calls in flight.

The store itself is not needed for these rules (the integration test
``test_concurrent_exports`` runs them against chDB through a real API server): the
clients here only record how they are used."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from query_api.filters import LogFilter
from query_api.repository import LogRepository
from schemas.log_store import StoreLocation

LOCATION = StoreLocation.parse("http://localhost:8123/authtrail")
BOUNDARIES: list[tuple[datetime, str]] = []  # shared by every client


class Result:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.result_rows = rows


class RecordingClient:
    """Answers a count with 7 and an export's chunks with a line each (its boundaries:
    ``BOUNDARIES``, one per chunk before the last); ``gate`` (when set) holds each query
    until it is opened. Records two threads inside it at once, and each close."""

    def __init__(self, opened: list[RecordingClient], gate: threading.Event | None) -> None:
        self.gate = gate
        self.boundaries = BOUNDARIES
        self.entered = threading.Event()
        self.inside = 0
        self.overlapped = False
        self.closes = 0
        self.queries = 0
        self.lock = threading.Lock()
        opened.append(self)

    def _call(self) -> None:
        with self.lock:
            self.inside += 1
            self.overlapped |= self.inside > 1
            self.queries += 1
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        with self.lock:
            self.inside -= 1

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Result:
        assert not self.closes, "query on a closed client"
        self._call()
        if "OFFSET" in sql:
            return Result([self.boundaries.pop()] if self.boundaries else [])
        return Result([(7,)])

    def raw_query(self, sql: str, **kwargs: Any) -> bytes:
        assert not self.closes, "query on a closed client"
        self._call()
        return b"rows\n"

    def set_client_setting(self, key: str, value: Any) -> None:
        pass

    def close(self) -> None:
        self.closes += 1


def repository(gate: threading.Event | None = None) -> tuple[LogRepository, list[RecordingClient]]:
    opened: list[RecordingClient] = []
    return LogRepository(
        LOCATION,
        client_factory=lambda: RecordingClient(opened, gate),  # type: ignore[arg-type,return-value]
        query_timeout_s=5,
    ), opened


def test_calls_at_once_get_clients_of_their_own_and_clients_are_reused() -> None:
    gate = threading.Event()
    repo, opened = repository(gate)
    calls = [threading.Thread(target=repo.count, args=(LogFilter(),)) for _ in range(3)]
    for call in calls:
        call.start()
    while len(opened) < 3 or not all(c.entered.is_set() for c in opened):
        threading.Event().wait(0.01)
    gate.set()
    for call in calls:
        call.join(10)
    assert len(opened) == 3 and not any(c.overlapped for c in opened)
    # Later calls, from any thread, take the clients given back: no new one.
    later = [threading.Thread(target=repo.count, args=(LogFilter(),)) for _ in range(5)]
    for call in later:
        call.start()
        call.join(10)
    assert len(opened) == 3
    repo.close()
    assert [c.closes for c in opened] == [1, 1, 1]


def test_an_export_holds_no_client_between_its_steps() -> None:
    repo, opened = repository()
    BOUNDARIES[:] = [(datetime(2025, 1, 1), "e1")]  # two chunks
    export = repo.export(LogFilter(), "csv")
    assert next(export) == b"rows\n"
    # Between steps the export's client is free: another call takes it, and close()
    # closes it at once (nothing is lent).
    assert repo.count(LogFilter()) == 7
    assert len(opened) == 1
    repo.close(timeout_s=0)
    assert opened[0].closes == 1
    # The next step (as if on another thread) borrows a new client.
    assert list(export) == [b"rows\n"]
    assert len(opened) == 2 and opened[1].closes == 0
    repo.close()
    assert opened[1].closes == 1


def test_close_waits_for_a_call_in_flight_and_closes_its_client_after_it() -> None:
    gate = threading.Event()
    repo, opened = repository(gate)
    answers: list[int] = []
    call = threading.Thread(target=lambda: answers.append(repo.count(LogFilter())))
    call.start()
    while not opened or not opened[0].entered.is_set():
        threading.Event().wait(0.01)
    closer = threading.Thread(target=repo.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive(), "close() returned while a call still had its client"
    assert opened[0].closes == 0  # not closed under the running query
    gate.set()
    closer.join(10)
    call.join(10)
    assert answers == [7]
    assert opened[0].closes == 1
    # Still usable: a new client.
    gate.set()
    assert repo.count(LogFilter()) == 7
    assert len(opened) == 2
    repo.close()
