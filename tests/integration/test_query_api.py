"""The log store writer and the query API over the real chDB engine (in-process)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipeline.enrich import Enricher
from pipeline.normalize import Normalizer
from pipeline.store import EventWriter
from query_api.app import create_app
from query_api.repository import LogRepository
from schemas.clickhouse import StoreLocation, connect, migrate
from schemas.events import NormalizedEvent

# chDB holds one data directory per process: every in-process test shares this one.
_STORE_DIR: Path | None = None


@pytest.fixture(scope="session")
def location(tmp_path_factory: pytest.TempPathFactory) -> StoreLocation:
    global _STORE_DIR
    _STORE_DIR = tmp_path_factory.mktemp("chdb") / "clickhouse"
    loc = StoreLocation.parse(f"chdb://{_STORE_DIR}")
    assert migrate(connect(loc), loc, 90) == [1]
    assert migrate(connect(loc), loc, 90) == []  # idempotent
    return loc


@pytest.fixture(scope="session")
def events(location: StoreLocation) -> list[NormalizedEvent]:
    normalizer = Normalizer(Enricher())
    start = datetime(2026, 11, 1, tzinfo=UTC)
    made = []
    for i in range(137):
        raw = (
            f'{{"event_id": "00000000-0000-4000-8000-{i:012d}", "event_key": "login.completed",'
            f' "ts": {int((start + timedelta(minutes=i // 2)).timestamp())},'
            f' "account": {{"id": "acc_{i % 3}"}}, "actor": {{"id": "u{i}"}}}}'
        ).encode()
        result = normalizer.normalize(raw, start + timedelta(days=1))
        assert isinstance(result, NormalizedEvent)
        made.append(result)
    writer = EventWriter(connect(location), location)
    assert writer.write(made) == []
    assert writer.write(made[:40]) == []  # redelivered after a "crash"
    return made


@pytest.fixture
def client(location: StoreLocation, events: list[NormalizedEvent]) -> Iterator[TestClient]:
    with TestClient(create_app(LogRepository(location))) as test_client:
        yield test_client


def test_paging_returns_every_row_exactly_once(
    client: TestClient, events: list[NormalizedEvent]
) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 25}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/v1/logs", params=params).json()
        seen.extend(item["event_id"] for item in body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 6
    assert len(seen) == len(set(seen)) == len(events)  # duplicates collapsed
    expected = sorted(events, key=lambda e: (e.occurred_at, e.event_id), reverse=True)
    assert seen == [e.event_id for e in expected]


@pytest.mark.parametrize(
    ("params", "status", "parameter"),
    [
        ({"limit": 0}, 422, "limit"),
        ({"limit": 501}, 422, "limit"),
        ({"limit": "many"}, 422, "limit"),
        ({"cursor": "garbage"}, 400, "cursor"),
        ({"cursor": "x" * 600}, 422, "cursor"),
    ],
)
def test_invalid_parameters_name_the_parameter(
    client: TestClient, params: dict[str, object], status: int, parameter: str
) -> None:
    response = client.get("/api/v1/logs", params=params)
    assert response.status_code == status
    assert response.json()["errors"][0]["parameter"] == parameter


def test_healthz_and_openapi(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert (health["status"], health["schema_version"]) == ("ok", 1)
    spec = client.get("/openapi.json").json()
    assert "/api/v1/logs" in spec["paths"]


def test_second_process_gets_a_plain_error(location: StoreLocation) -> None:
    import subprocess
    import sys

    code = (
        "from schemas.clickhouse import StoreLocation, connect\n"
        f"connect(StoreLocation.parse('{location.url}'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "is in use by process" in result.stderr
    assert "authtrail up" in result.stderr


def test_store_refuses_bad_rows_individually(
    location: StoreLocation, events: list[NormalizedEvent]
) -> None:
    """A batch the store refuses is bisected: the good rows are stored, only the rows at
    fault come back (to be dead-lettered) with the store's reason."""
    client = connect(location)
    db = location.database
    client.command(f"CREATE TABLE IF NOT EXISTS {db}.strict_events AS {db}.auth_events")
    client.command(
        f"ALTER TABLE {db}.strict_events ADD CONSTRAINT IF NOT EXISTS no_bad "
        "CHECK event_id NOT LIKE 'bad-%'"
    )
    batch = [e.model_copy(update={"event_id": f"ok-{i}"}) for i, e in enumerate(events[:9])]
    batch.insert(3, events[0].model_copy(update={"event_id": "bad-1"}))
    batch.append(events[0].model_copy(update={"event_id": "bad-2"}))
    refused = EventWriter(client, location, table="strict_events").write(batch)
    assert [e.event_id for e, _ in refused] == ["bad-1", "bad-2"]
    assert all("refused by the log store" in reason and "469" in reason for _, reason in refused)
    stored = client.query(f"SELECT count() FROM {db}.strict_events").result_rows[0][0]
    assert stored == 9
