"""Each account's own retention (#20 item 3): a TTL expression of the events table that
maps the account to its days, applied to the rows already stored, set from the CLI and the
API and applied by the running ingest worker."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
from clickhouse_connect.driver.client import Client

from infra.clickhouse.client import apply_retention, current_ttl, migrate
from schemas.log_store import StoreLocation
from schemas.retention import ttl_expression
from tests.integration.conftest import Authtrail, event, run_cli


def test_ttl_expression_is_stable_and_escapes_account_ids() -> None:
    assert ttl_expression(90, {}) == "toDateTime(occurred_at) + toIntervalDay(90)"
    one = ttl_expression(90, {"b": 30, "a'\\x": 365})
    assert one == ttl_expression(90, {"a'\\x": 365, "b": 30})
    assert "['a\\'\\\\x', 'b']" in one and "[365, 30]" in one and "toUInt16(90)" in one


def test_an_accounts_retention_deletes_its_older_rows_and_no_others(
    own_database: tuple[StoreLocation, Client],
) -> None:
    location, client = own_database
    migrate(client, location, 90)
    now = datetime.now(UTC)
    rows = [
        ["short-old", "acc_short", now - timedelta(days=10)],
        ["short-new", "acc_short", now - timedelta(days=1)],
        ["other-old", "acc_other", now - timedelta(days=10)],
        ["quote-old", "acc_'q", now - timedelta(days=10)],
    ]
    columns = ["event_id", "account_id", "occurred_at", "received_at", "event_key"]
    client.insert(
        location.events_table,
        [[e, a, t, t, "login.completed"] for e, a, t in rows],
        column_names=columns,
    )
    days = {"acc_short": 5, "acc_long": 365, "acc_'q": 5}
    assert apply_retention(client, location, 90, days)
    assert current_ttl(client, location) == ttl_expression(90, days)
    assert not apply_retention(client, location, 90, days)  # unchanged: no ALTER
    client.command(f"OPTIMIZE TABLE {location.storage_table} FINAL")  # a forced merge
    left = {r[0] for r in client.query(f"SELECT event_id FROM {location.events_table}").result_rows}
    assert left == {"short-new", "other-old"}
    # A longer retention keeps what the default would not (ClickHouse drops rows past
    # their TTL at insert already).
    long_ago = now - timedelta(days=200)
    client.insert(
        location.events_table,
        [["long-old", "acc_long", long_ago, long_ago, "login.completed"]],
        column_names=columns,
    )
    client.command(f"OPTIMIZE TABLE {location.storage_table} FINAL")
    left = {r[0] for r in client.query(f"SELECT event_id FROM {location.events_table}").result_rows}
    assert left == {"short-new", "other-old", "long-old"}
    # Back to the default alone: long-old is past it.
    assert apply_retention(client, location, 90, {})
    client.command(f"OPTIMIZE TABLE {location.storage_table} FINAL")
    left = {r[0] for r in client.query(f"SELECT event_id FROM {location.events_table}").result_rows}
    assert left == {"short-new", "other-old"}


def aged(days: float, account: str) -> bytes:
    return event(
        "login.completed",
        account={"id": account},
        occurred_at=int((time.time() - days * 86_400) * 1000),
    )


def rows_of(authtrail: Authtrail, account: str) -> int:
    return len(authtrail.logs(account=account, range="30d", limit=500)["items"])


def test_set_from_the_cli_and_the_api_applied_by_the_running_worker(authtrail: Authtrail) -> None:
    authtrail.start()
    lines = [aged(10, "acc_a"), aged(1, "acc_a"), aged(10, "acc_b"), aged(10, "acc_c")]
    assert "4 accepted" in authtrail.produce(lines).stdout
    authtrail.wait_for_rows(4)
    api = f"{authtrail.api}/api/v1"

    # The CLI writes the setting; the worker applies it (no store access of its own).
    assert (
        run_cli(authtrail.env, "retention", "set", "--account", "acc_a", "--days", "5").returncode
        == 0
    )
    deadline = time.monotonic() + 60
    while rows_of(authtrail, "acc_a") != 1:
        assert time.monotonic() < deadline, authtrail.log()
        time.sleep(0.5)
    listed = run_cli(authtrail.env, "retention", "list").stdout
    assert "acc_a\t5 days" in listed

    # The API answers once the store has it.
    reply = httpx.put(
        f"{api}/accounts/acc_b/retention", json={"days": 7}, headers=authtrail.headers, timeout=60
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() | {"set_at": None} == {
        "account": "acc_b",
        "days": 7,
        "own": True,
        "set_by": "admin",
        "set_at": None,
        "applied": True,
    } | {"set_by": reply.json()["set_by"]}
    assert rows_of(authtrail, "acc_b") == 0
    assert rows_of(authtrail, "acc_c") == 1
    overview = httpx.get(f"{api}/retention", headers=authtrail.headers, timeout=10).json()
    assert {a["account"]: a["days"] for a in overview["accounts"]} == {"acc_a": 5, "acc_b": 7}
    got = httpx.get(f"{api}/accounts/acc_c/retention", headers=authtrail.headers, timeout=10)
    assert got.json()["own"] is False and got.json()["days"] == overview["default_days"]

    bad = httpx.put(
        f"{api}/accounts/acc_b/retention", json={"days": 0}, headers=authtrail.headers, timeout=10
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["parameter"] == "days"
    back = httpx.delete(f"{api}/accounts/acc_b/retention", headers=authtrail.headers, timeout=60)
    assert back.status_code == 200 and back.json()["own"] is False
    assert authtrail.stop() == 0

    # A restart keeps the accounts' own retention (read from the topic at start).
    authtrail.start()
    assert "4 accepted" in authtrail.produce(lines).stdout
    time.sleep(3)
    assert rows_of(authtrail, "acc_a") == 1
    assert authtrail.stop() == 0
