"""The log store's retention (``AUTHTRAIL_RETENTION_DAYS``) at both ends (#16 item 4):
``migrate`` gives the table's TTL the setting whenever it changes, and the ingest worker
refuses, with a dead letter that says why, events the TTL would delete at once, also
after the retention was shortened and the worker restarted."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import orjson
import pytest
from clickhouse_connect.driver.client import Client

from infra.clickhouse.client import connect, migrate
from schemas import topics
from schemas.log_store import MIGRATIONS, ROLLUPS, StoreLocation
from tests.integration.conftest import RETENTION_DAYS, Authtrail, consume_all, event


class CommandLog:
    """A store client that remembers the statements ``migrate`` sends."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.commands: list[str] = []

    def command(self, statement: str, **kwargs: Any) -> Any:
        self.commands.append(" ".join(statement.split()))
        return self._client.command(statement, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def ttl_of(client: Client, location: StoreLocation) -> str:
    shown = str(client.command(f"SHOW CREATE TABLE {location.storage_table}"))
    return shown[shown.index("TTL ") :].split("\\n")[0].split("\n")[0]


def test_migrate_gives_the_ttl_a_changed_retention_once(store: StoreLocation) -> None:
    # A database of its own: the session's store keeps the suite's retention.
    location = StoreLocation(store.url, f"retention_{uuid.uuid4().hex[:8]}", store.cluster)
    client = connect(location)
    try:
        assert migrate(client, location, 90) == [m.version for m in MIGRATIONS]
        assert ttl_of(client, location) == "TTL toDateTime(occurred_at) + toIntervalDay(90)"

        shortened = CommandLog(client)
        assert migrate(shortened, location, 9) == []  # type: ignore[arg-type]
        assert ttl_of(client, location) == "TTL toDateTime(occurred_at) + toIntervalDay(9)"
        # Once for the events table, once for each rollup (their rows follow the events').
        modified = [c for c in shortened.commands if "MODIFY TTL" in c]
        assert sum(f"{location.storage_table} " in c for c in modified) == 1
        assert len(modified) == 1 + (len(ROLLUPS) if location.rollups else 0)

        again = CommandLog(client)
        assert migrate(again, location, 9) == []  # type: ignore[arg-type]
        assert not any(c.startswith("ALTER") for c in again.commands), again.commands

        assert migrate(client, location, 90) == []
        assert ttl_of(client, location) == "TTL toDateTime(occurred_at) + toIntervalDay(90)"
    finally:
        client.command(f"DROP DATABASE IF EXISTS {location.database}{location.on_cluster} SYNC")
        client.close()


def dead_letters(authtrail: Authtrail, count: int) -> dict[bytes, dict[str, bytes]]:
    records = consume_all(
        authtrail.env["AUTHTRAIL_KAFKA_BOOTSTRAP"],
        authtrail.env["AUTHTRAIL_TOPIC_PREFIX"] + topics.DLQ,
        count,
    )
    return {m.value(): dict(m.headers()) for m in records}


def aged(days: float, key: str = "login.completed") -> bytes:
    """An event that occurred ``days`` ago by this machine's clock (the worker's too)."""
    return event(key, occurred_at=int((time.time() - days * 86_400) * 1000))


def ingest_counters(authtrail: Authtrail) -> dict[str, Any]:
    counters: dict[str, Any] = httpx.get(f"{authtrail.api}/healthz", timeout=10).json()["ingest"]
    return counters


def wait_for_dead_letters(authtrail: Authtrail, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while ingest_counters(authtrail)["dead_lettered"] < count:
        if time.monotonic() > deadline:
            pytest.fail(f"expected {count} dead letters:\n{authtrail.log()}")
        time.sleep(0.3)


def table_ttl(authtrail: Authtrail) -> str:
    """The events table's TTL, read in a process of its own once the worker stopped
    (chDB opens one data directory per process)."""
    script = (
        "from infra.clickhouse.client import connect\n"
        "from schemas.log_store import location_of\n"
        "from schemas.settings import Settings\n"
        "location = location_of(Settings())\n"
        "print(connect(location).command(f'SHOW CREATE TABLE {location.storage_table}'))\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script],
        env=authtrail.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return shown[shown.index("TTL ") :].split("\\n")[0].split("\n")[0]


def test_events_older_than_the_retention_are_dead_lettered_not_stored(
    authtrail: Authtrail,
) -> None:
    # Relative to the suite's retention, which a run with the clock a year back raises
    # (chDB keeps the real clock: see conftest).
    retention = RETENTION_DAYS
    shortened = retention - 10
    assert shortened >= 1, "the suite's retention must be above 10 days"
    authtrail.env["AUTHTRAIL_RETENTION_DAYS"] = str(retention)
    authtrail.start()
    fresh, too_old = event("login.completed"), aged(retention + 1, "login.failed")
    assert "2 accepted" in authtrail.produce([fresh, too_old]).stdout
    items = authtrail.wait_for_rows(1)
    wait_for_dead_letters(authtrail, 1)
    assert [i["event_id"] for i in items] == [orjson.loads(fresh)["event_id"]]
    letter = dead_letters(authtrail, 1)[too_old]
    reason = letter[topics.DLQ_REASON_HEADER].decode()
    assert f"is older than the log store's retention of {retention} days" in reason, reason
    assert "(AUTHTRAIL_RETENTION_DAYS; cutoff " in reason
    assert letter[topics.DLQ_FIELD_HEADER] == b"occurred_at"
    counters = ingest_counters(authtrail)
    assert (counters["stored"], counters["dead_lettered"]) == (1, 1)
    assert counters["older_than_retention"] == 1
    metrics = httpx.get(f"{authtrail.api}/metrics/", timeout=10).text
    assert "authtrail_ingest_older_than_retention_total 1.0" in metrics
    assert authtrail.stop() == 0

    # The retention shortened: the restart narrows the TTL, and a late event the old
    # retention covered, the new one not, is refused with the new value.
    authtrail.env["AUTHTRAIL_RETENTION_DAYS"] = str(shortened)
    authtrail.start()
    late, fresh_again = aged(retention - 5), event("logout.completed")
    assert "2 accepted" in authtrail.produce([late, fresh_again]).stdout
    items = authtrail.wait_for_rows(2)
    wait_for_dead_letters(authtrail, 1)
    assert {i["event_id"] for i in items} == {
        orjson.loads(e)["event_id"] for e in (fresh, fresh_again)
    }
    reason = dead_letters(authtrail, 2)[late][topics.DLQ_REASON_HEADER].decode()
    assert f"is older than the log store's retention of {shortened} days" in reason, reason
    assert ingest_counters(authtrail)["older_than_retention"] == 1  # since this start
    assert authtrail.stop() == 0
    assert table_ttl(authtrail) == f"TTL toDateTime(occurred_at) + toIntervalDay({shortened})"
