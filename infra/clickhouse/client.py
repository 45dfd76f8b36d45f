"""The log store's I/O: opening it (embedded chDB or a ClickHouse server, one code path
through clickhouse-connect) and bringing its schema (``schemas.log_store``) up to date."""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from schemas.log_store import (
    MIGRATIONS,
    MIGRATIONS_TABLE,
    ROLLUPS,
    StoreLocation,
    StoreUnavailableError,
    bookkeeping,
    location_of,
)
from schemas.retention import ttl_expression
from schemas.settings import Settings

log = logging.getLogger(__name__)

# Each rollup's TTL moment: the end of the unit its row counts.
ROLLUP_TTL_MOMENTS = {
    table: f"(at + toIntervalSecond({seconds}))" for table, (seconds, _, _) in ROLLUPS.items()
}


# Embedded chDB allows one process per data directory. We hold an flock on a file beside
# it for the life of the process, so a second process gets a plain explanation instead
# of chDB's opaque "Error initializing EmbeddedServer".
_held_locks: dict[Path, int] = {}


def _lock_embedded(path: Path) -> None:
    if path in _held_locks:
        return
    path.mkdir(parents=True, exist_ok=True)
    lock_path = path.parent / (path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise StoreUnavailableError(
            f"the embedded log store {path} is in use by process {holder}. chDB allows one "
            "process per data directory: the query API runs inside the ingest worker "
            "('authtrail up'). Stop that process, use another AUTHTRAIL_DATA_DIR, or point "
            "AUTHTRAIL_CLICKHOUSE_URL at a ClickHouse server."
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    _held_locks[path] = fd


def connect(location: StoreLocation) -> Client:
    """A new clickhouse-connect client for ``location``. Use one client per thread: chDB
    releases the GIL during queries, so per-thread clients query in parallel.

    Raises ``StoreUnavailableError`` with a plain explanation (never the password)."""
    if location.embedded and importlib.util.find_spec("chdb") is None:
        raise StoreUnavailableError(
            "the embedded log store needs chDB, which this installation leaves out (the "
            "container image does): pip install 'authtrail[embedded]', or point "
            "AUTHTRAIL_CLICKHOUSE_URL at a ClickHouse server"
        )
    try:
        if location.embedded:
            _lock_embedded(location.chdb_path)
            return clickhouse_connect.get_client(dsn=location.url)
        client = clickhouse_connect.get_client(dsn=location.url, database="default")
        client.command(f"CREATE DATABASE IF NOT EXISTS {location.database}{location.on_cluster}")
        return clickhouse_connect.get_client(dsn=location.url, database=location.database)
    except StoreUnavailableError:
        raise
    except Exception as exc:
        message = str(exc).replace(location.url, location.safe_url)
        raise StoreUnavailableError(
            f"cannot open the log store at {location.safe_url}: {message[:500]}"
        ) from None


def migrate(
    client: Client,
    location: StoreLocation,
    retention_days: int,
    account_days: Mapping[str, int] | None = None,
) -> list[int]:
    """Brings the schema to the newest version and the TTL to ``retention_days``, with
    ``account_days`` the accounts' own (see ``apply_retention``; None: none).
    Idempotent; returns the versions applied now."""
    db = location.database
    for statement in bookkeeping(location):
        client.command(statement)
    fields = location.migration_fields(retention_days)
    done = {
        row[0] for row in client.query(f"SELECT version FROM {db}.{MIGRATIONS_TABLE}").result_rows
    }
    applied: list[int] = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        for statement in () if migration.single_node and location.cluster else migration.statements:
            client.command(statement.format(**fields))
        client.insert(
            f"{db}.{MIGRATIONS_TABLE}",
            [[migration.version, migration.description]],
            column_names=["version", "description"],
        )
        log.info("log store schema migrated to v%d: %s", migration.version, migration.description)
        applied.append(migration.version)
    front = location.front_statement()
    if front is not None:
        client.command(front)
    apply_retention(client, location, retention_days, account_days or {})
    return applied


def open_migrated(
    settings: Settings, account_days: Mapping[str, int] | None = None
) -> tuple[StoreLocation, list[int]]:
    """The log store ``settings`` name, its schema brought up to date (the TTL with the
    accounts' own retention ``account_days``); returns it with the versions applied now.
    Raises ``StoreUnavailableError`` when it cannot be opened."""
    location = location_of(settings)
    client = connect(location)
    try:
        return location, migrate(client, location, settings.retention_days, account_days)
    finally:
        client.close()


def current_ttl(client: Client, location: StoreLocation, table: str | None = None) -> str:
    """The events table's (or ``table``'s) TTL expression as the server writes it."""
    engine: Any = client.query(
        "SELECT engine_full FROM system.tables WHERE database = {d:String} AND name = {t:String}",
        parameters={"d": location.database, "t": table or location.storage_name},
    ).result_rows
    text = str(engine[0][0]) if engine else ""
    start = text.find(" TTL ")
    if start < 0:
        return ""
    end = text.find(" SETTINGS ", start)
    return text[start + 5 : end if end >= 0 else None].strip()


def apply_retention(
    client: Client, location: StoreLocation, default_days: int, account_days: Mapping[str, int]
) -> bool:
    """Gives the events table the TTL of ``default_days`` and the accounts' own days,
    unless it has it already; returns whether it changed. The rows already stored get the
    new TTL at once (``materialize_ttl_after_modify``): a shortened retention deletes what
    is past it, a lengthened one keeps what a merge would otherwise have deleted."""
    wanted = ttl_expression(default_days, account_days)
    changed = False
    if location.rollups:
        # The rollups first: a row of them goes once every event it counts is past
        # retention, never before (the repository reads them only where they are exact).
        for table, moment in ROLLUP_TTL_MOMENTS.items():
            rollup_ttl = ttl_expression(default_days, account_days, moment)
            if _has_table(client, location, table) and (
                current_ttl(client, location, table) != rollup_ttl
            ):
                client.command(
                    f"ALTER TABLE {location.database}.{table} MODIFY TTL {rollup_ttl}",
                    settings={"materialize_ttl_after_modify": 1, "mutations_sync": 1},
                )
                changed = True
    if current_ttl(client, location) == wanted:
        return changed
    client.command(
        f"ALTER TABLE {location.storage_table}{location.on_cluster} MODIFY TTL {wanted}",
        settings={"materialize_ttl_after_modify": 1, "mutations_sync": 1},
    )
    log.info(
        "log store retention: %d days, %d account(s) with their own",
        default_days,
        len(account_days),
    )
    return True


def _has_table(client: Client, location: StoreLocation, table: str) -> bool:
    rows: Any = client.query(
        "SELECT count() FROM system.tables WHERE database = {d:String} AND name = {t:String}",
        parameters={"d": location.database, "t": table},
    ).result_rows
    return bool(rows[0][0])


def schema_version(client: Client, location: StoreLocation) -> int:
    rows: Any = client.query(
        f"SELECT max(version) FROM {location.database}.{MIGRATIONS_TABLE}"
    ).result_rows
    return int(rows[0][0]) if rows else 0
