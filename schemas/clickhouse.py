"""The log store: how to open it (embedded chDB or a ClickHouse server, one code path
through clickhouse-connect) and its versioned schema.

Layout choices, from the measurements in design.md:
* Ordered by ``(occurred_at, event_id)``: the newest-first view reads in key order and
  stops after a page. The writer skips ids already stored; ``ReplacingMergeTree`` collapses
  a twin a race lets through (a redelivered event has the same sorting key).
* Granules of 2,048 rows: a point search (an IP, a trace id) reads 4x fewer rows around
  each skip-index hit than with the default 8,192.
* Skip indexes on the columns the Logs view searches exactly (trace id, IP, actor,
  account, event id) so a classified search reads few granules.
* Monthly partitions and a row TTL from ``AUTHTRAIL_RETENTION_DAYS``.
* Compressed blocks of 8-16 KiB (migration 2): a search page reads rows scattered over
  many granules, and each costs a whole compressed block per column.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from schemas.settings import redact_url

log = logging.getLogger(__name__)

EVENTS_TABLE = "auth_events"
MIGRATIONS_TABLE = "schema_migrations"
DEFAULT_DATABASE = "authtrail"

# Column order of the events table, shared by writer and readers.
EVENT_COLUMNS: tuple[str, ...] = (
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
    "ip",
    "country",
    "user_agent",
    "ua_browser",
    "ua_os",
    "ua_device",
    "trace_id",
    "reason",
    "attributes",
    "raw",
    "schema_version",
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


# Statements are formatted with {db} and {retention_days}. Never edit a released
# migration: add a new one.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "auth_events log table",
        (
            """
            CREATE TABLE IF NOT EXISTS {db}.auth_events
            (
                event_id       String,
                event_key      LowCardinality(String),
                description    LowCardinality(String),
                outcome        Enum8('success' = 1, 'failure' = 2),
                occurred_at    DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
                received_at    DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
                account_id     String,
                account_name   String,
                actor_id       String,
                actor_email    String,
                actor_type     Enum8('anonymous' = 0, 'user' = 1, 'agent' = 2, 'service' = 3),
                actor_display  String,
                ip             String,
                country        LowCardinality(String),
                user_agent     String CODEC(ZSTD(3)),
                ua_browser     LowCardinality(String),
                ua_os          LowCardinality(String),
                ua_device      LowCardinality(String),
                trace_id       String,
                reason         String,
                attributes     String CODEC(ZSTD(3)),
                raw            String CODEC(ZSTD(3)),
                schema_version UInt8,
                INDEX ix_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 1,
                INDEX ix_trace trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
                INDEX ix_ip ip TYPE bloom_filter(0.001) GRANULARITY 1,
                INDEX ix_account account_id TYPE bloom_filter(0.01) GRANULARITY 1,
                INDEX ix_actor_id actor_id TYPE bloom_filter(0.01) GRANULARITY 1,
                INDEX ix_actor_email actor_email TYPE bloom_filter(0.01) GRANULARITY 1,
                INDEX ix_event_key event_key TYPE set(512) GRANULARITY 1
            )
            ENGINE = ReplacingMergeTree
            PARTITION BY toYYYYMM(occurred_at)
            ORDER BY (occurred_at, event_id)
            TTL toDateTime(occurred_at) + toIntervalDay({retention_days})
            SETTINGS index_granularity = 2048
            """,
        ),
    ),
    Migration(
        2,
        "compressed blocks of 8-16 KiB",
        # A page of a search (an IP, a user) reads ~50 rows that sit in ~50 different
        # granules: one compressed block per column per row. 8-16 KiB blocks instead of
        # 64 KiB-1 MiB took an IP search at 10M events from 149 to 99 ms (p95), a user
        # from 95 to 76 ms, for 6% more disk. New parts get it; merges rewrite old ones.
        (
            "ALTER TABLE {db}.auth_events MODIFY SETTING "
            "min_compress_block_size = 8192, max_compress_block_size = 16384",
        ),
    ),
)


class StoreUnavailableError(RuntimeError):
    """The log store cannot be opened; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """Where the log store lives, parsed from ``AUTHTRAIL_CLICKHOUSE_URL``."""

    url: str
    database: str

    @property
    def embedded(self) -> bool:
        return self.url.startswith("chdb://")

    @property
    def chdb_path(self) -> Path:
        return Path(urlsplit(self.url).path)

    @property
    def safe_url(self) -> str:
        return redact_url(self.url)

    @classmethod
    def parse(cls, url: str) -> StoreLocation:
        parts = urlsplit(url)
        if parts.scheme == "chdb":
            if not parts.path or parts.path == "/":
                raise StoreUnavailableError("a chdb:// URL needs a directory: chdb:///var/lib/x")
            return cls(url, DEFAULT_DATABASE)
        if parts.scheme in ("http", "https"):
            database = parts.path.strip("/") or DEFAULT_DATABASE
            if not database.replace("_", "").isalnum():
                raise StoreUnavailableError(f"invalid ClickHouse database name {database!r}")
            return cls(url, database)
        raise StoreUnavailableError(
            f"AUTHTRAIL_CLICKHOUSE_URL must start with chdb://, http:// or https://, "
            f"not {parts.scheme or 'nothing'}:// ({redact_url(url)})"
        )


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
    try:
        if location.embedded:
            _lock_embedded(location.chdb_path)
            return clickhouse_connect.get_client(dsn=location.url)
        client = clickhouse_connect.get_client(dsn=location.url, database="default")
        client.command(f"CREATE DATABASE IF NOT EXISTS {location.database}")
        return clickhouse_connect.get_client(dsn=location.url, database=location.database)
    except StoreUnavailableError:
        raise
    except Exception as exc:
        message = str(exc).replace(location.url, location.safe_url)
        raise StoreUnavailableError(
            f"cannot open the log store at {location.safe_url}: {message[:500]}"
        ) from None


def migrate(client: Client, location: StoreLocation, retention_days: int) -> list[int]:
    """Brings the schema to the newest version and the TTL to ``retention_days``.
    Idempotent; returns the versions applied now."""
    db = location.database
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {db}.{MIGRATIONS_TABLE} "
        "(version UInt32, description String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = MergeTree ORDER BY version"
    )
    done = {
        row[0] for row in client.query(f"SELECT version FROM {db}.{MIGRATIONS_TABLE}").result_rows
    }
    applied: list[int] = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        for statement in migration.statements:
            client.command(statement.format(db=db, retention_days=retention_days))
        client.insert(
            f"{db}.{MIGRATIONS_TABLE}",
            [[migration.version, migration.description]],
            column_names=["version", "description"],
        )
        log.info("log store schema migrated to v%d: %s", migration.version, migration.description)
        applied.append(migration.version)
    _apply_retention(client, db, retention_days)
    return applied


def _apply_retention(client: Client, db: str, retention_days: int) -> None:
    ddl = str(client.command(f"SHOW CREATE TABLE {db}.{EVENTS_TABLE}"))
    if f"toIntervalDay({retention_days})" in ddl:
        return
    client.command(
        f"ALTER TABLE {db}.{EVENTS_TABLE} MODIFY TTL "
        f"toDateTime(occurred_at) + toIntervalDay({int(retention_days)})",
        settings={"materialize_ttl_after_modify": 0},
    )
    log.info("log store retention set to %d days", retention_days)


@contextmanager
def opened(location: StoreLocation) -> Iterator[Client]:
    client = connect(location)
    try:
        yield client
    finally:
        client.close()


def schema_version(client: Client, location: StoreLocation) -> int:
    rows: Any = client.query(
        f"SELECT max(version) FROM {location.database}.{MIGRATIONS_TABLE}"
    ).result_rows
    return int(rows[0][0]) if rows else 0
