"""The facets and the timeline answered from the rollups (migration 5) are the events
table's answers: at any range (whole units, partial edge hours, open ends), under every
filter the rollups carry, after an erasure rewrote a person, after the retention TTL
deleted rows, and with an event written twice."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from infra.clickhouse.client import apply_retention, migrate
from pipeline.erasure import erase_in_store
from pipeline.store import EventWriter, Row
from query_api import sql
from query_api.filters import LogFilter
from query_api.repository import LogRepository
from schemas.erasure import ErasureRecord, Pseudonyms
from schemas.log_store import ACTORS_4W_TABLE, ACTORS_DAILY_TABLE, ROLLUPS, StoreLocation

NOW = datetime.now(UTC)
KEYS = ("login.completed", "login.failed", "oidc.flow.started", "logout.completed")


def events(count: int = 600) -> list[list[object]]:
    """Events over the last 40 days, many within minutes of an hour's or a day's edge."""
    rows = []
    for i in range(count):
        if i % 3 == 0:  # on either side of a whole hour
            base = NOW.replace(minute=0, second=0, microsecond=0) - timedelta(hours=i % 97)
            at = base + timedelta(seconds=(-1) ** i * (i % 7) * 0.5)
        else:
            at = NOW - timedelta(minutes=i * 97 % (40 * 1440), milliseconds=i * 13)
        account = f"acc_{i % 4}" if i % 11 else ""
        user = i % 9
        anonymous = i % 13 == 0
        rows.append(
            [
                f"ev-{i:05d}",
                KEYS[i % len(KEYS)],
                KEYS[i % len(KEYS)].replace(".", " ").capitalize(),
                "failure" if "failed" in KEYS[i % len(KEYS)] else "success",
                at,
                at,
                account,
                f"Account {i % 4}" if account else "",
                "" if anonymous else f"usr_{user}",
                "" if anonymous or user % 2 else f"person{user}@x.io",
                "anonymous" if anonymous else "user",
                "anonymous"
                if anonymous
                else (f"person{user}@x.io" if user % 2 == 0 else f"usr_{user}"),
                "{}",
            ]
        )
    return rows


COLUMNS = [
    "event_id",
    "event_key",
    "description",
    "outcome",
    "occurred_at",
    "received_at",
    "account_id",
    "account_name",
    "actor_id",
    "actor_email",
    "actor_type",
    "actor_display",
    "raw",
]


@pytest.fixture
def stored(own_database: tuple[StoreLocation, Client]) -> tuple[StoreLocation, Client]:
    location, client = own_database
    migrate(client, location, 90)
    rows = events()
    for start in range(0, len(rows), 100):  # several inserts, several parts
        client.insert(location.events_table, rows[start : start + 100], column_names=COLUMNS)
    return location, client


def from_events(client: Client, location: StoreLocation) -> LogRepository:
    """The repository as it was: every answer from the events table."""
    repo = LogRepository(location)
    repo._shortest_retention = lambda client: None  # type: ignore[method-assign]
    return repo


def facets(repo: LogRepository, f: LogFilter, q: str | None = None) -> dict[str, object]:
    out = {}
    for name in ("accounts", "users", "types"):
        own = f.without(name)  # type: ignore[arg-type]
        out[name] = [(v.value, v.label, v.count) for v in repo.facet(name, own, q, 1000).values]  # type: ignore[arg-type]
    return out


def timeline(repo: LogRepository, f: LogFilter, bucket: str | None) -> list[tuple[object, ...]]:
    return [(b.start, b.success, b.failure) for b in repo.timeline(f, bucket, NOW).buckets]


RANGES = (
    (None, None),
    (NOW - timedelta(days=30), None),
    (NOW - timedelta(days=7, minutes=13, milliseconds=5), NOW - timedelta(hours=2, minutes=1)),
    (NOW.replace(minute=0, second=0, microsecond=0) - timedelta(hours=5), None),
    (None, NOW - timedelta(days=3, seconds=7)),
    (NOW - timedelta(hours=1, minutes=20), NOW - timedelta(minutes=50)),  # no whole hour
    (NOW - timedelta(days=60), NOW + timedelta(days=1)),
)
FILTERS = (
    LogFilter(),
    LogFilter(accounts=("acc_1",)),
    LogFilter(users=("person2@x.io",)),
    LogFilter(users=("anonymous",)),
    LogFilter(types=("login.failed", "logout.completed")),
    LogFilter(outcome="failure"),
    LogFilter(accounts=("acc_2", "acc_3"), outcome="success", types=("login.completed",)),
)


def test_rollup_answers_are_the_events_tables(stored: tuple[StoreLocation, Client]) -> None:
    location, client = stored
    rolled, plain = LogRepository(location), from_events(client, location)
    for (start, end), base in itertools.product(RANGES, FILTERS):
        f = LogFilter(
            accounts=base.accounts,
            users=base.users,
            types=base.types,
            outcome=base.outcome,
            start=start,
            end=end,
        )
        assert facets(rolled, f) == facets(plain, f), f
        assert facets(rolled, f, "person") == facets(plain, f, "person"), f
        if start is not None:
            for bucket, tz in (
                ("1h", "UTC"),
                (None, "UTC"),
                ("1d", "Europe/Dublin"),
                ("6h", "America/New_York"),
            ):
                zoned = LogFilter(
                    accounts=f.accounts,
                    users=f.users,
                    types=f.types,
                    outcome=f.outcome,
                    start=f.start,
                    end=f.end,
                    tz=tz,
                )
                assert timeline(rolled, zoned, bucket) == timeline(plain, zoned, bucket), (
                    f,
                    bucket,
                    tz,
                )
    # The rollups are read at all (not a fallback to the events everywhere).
    assert sql.rollup_for(LogFilter(), "users") is sql.ACTORS
    assert rolled._shortest_retention(client) == 90
    rolled.close()
    plain.close()


def test_an_erasure_leaves_no_clear_actor_in_the_rollups(
    stored: tuple[StoreLocation, Client],
) -> None:
    location, client = stored
    keys = Pseudonyms(b"k" * 32)
    record = ErasureRecord(
        id="er_0123456789abcdef",
        subject="erased:x",
        subject_macs=[keys.mac("person2@x.io")],
        account="acc_2",
        requested_by="t",
        requested_at=NOW,
    )
    count, _, _ = erase_in_store(client, location, record, keys)
    assert count > 0
    for table in (ACTORS_DAILY_TABLE, ACTORS_4W_TABLE):
        left = client.query(  # the ids and e-mail of person 2 in acc_2
            f"SELECT count() FROM {location.database}.{table} WHERE account_id = 'acc_2' "
            "AND (actor_email = 'person2@x.io' OR actor_display = 'person2@x.io' "
            "OR actor_id = 'usr_2')"
        ).result_rows[0][0]
        assert left == 0, table
    rolled, plain = LogRepository(location), from_events(client, location)
    for start, end in RANGES:
        f = LogFilter(start=start, end=end)
        assert facets(rolled, f) == facets(plain, f)
    # Elsewhere the person is not erased (the erasure named one account).
    assert any(
        v.value == "person2@x.io" for v in rolled.facet("users", LogFilter(), None, 1000).values
    )
    rolled.close()
    plain.close()


def test_retention_deletes_leave_the_rollup_answers_exact(
    stored: tuple[StoreLocation, Client],
) -> None:
    location, client = stored
    # acc_1 keeps 5 days, everyone else 20: rows older are deleted, in the middle of hours.
    assert apply_retention(client, location, 20, {"acc_1": 5})
    for table in (location.storage_name, *ROLLUPS):
        client.command(f"OPTIMIZE TABLE {location.database}.{table} FINAL")
    oldest = client.query(
        f"SELECT min(occurred_at) FROM {location.events_table} WHERE account_id = 'acc_1'"
    ).result_rows[0][0]
    assert oldest.replace(tzinfo=UTC) > NOW - timedelta(days=5, minutes=1)
    rolled, plain = LogRepository(location), from_events(client, location)
    assert rolled._shortest_retention(client) == 5
    for (start, end), f in itertools.product(RANGES, FILTERS[:3]):
        f = LogFilter(accounts=f.accounts, users=f.users, start=start, end=end)
        assert facets(rolled, f) == facets(plain, f), f
        if start is not None:
            assert timeline(rolled, f, "1h") == timeline(plain, f, "1h")
    rolled.close()
    plain.close()


def test_an_event_written_twice_by_ingest_is_counted_once(
    stored: tuple[StoreLocation, Client],
) -> None:
    """The writer skips ids the table holds (its dedupe query), so a redelivered batch
    reaches neither the events table nor the rollups a second time. (A twin that two
    writers race into the table at once is counted twice by the rollups for good, where
    the events table collapses it at its next merge: see the repository's docstring.)"""
    location, client = stored
    at = NOW - timedelta(hours=3)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    row = Row(
        "twice",
        at,
        "acc_twice",
        orjson.dumps(
            {
                "event_id": "twice",
                "event_key": "login.completed",
                "description": "Login completed",
                "outcome": "success",
                "occurred_at": stamp,
                "received_at": stamp,
                "account_id": "acc_twice",
                "actor_id": "usr_twice",
                "actor_type": "user",
                "actor_display": "usr_twice",
                "raw": "{}",
            }
        ),
    )
    writer = EventWriter(client, location)
    for _ in range(2):
        assert writer.write([row]) == []
    repo = LogRepository(location)
    counts = {v.value: v.count for v in repo.facet("accounts", LogFilter(), None, 100).values}
    assert counts["acc_twice"] == 1
    users = {v.value: v.count for v in repo.facet("users", LogFilter(), None, 1000).values}
    assert users["usr_twice"] == 1
    repo.close()
