"""The log store's schema, as text: its tables and columns, the versioned migrations that
create them, and where the store lives (``StoreLocation``). Opening it and running the
migrations is ``infra.clickhouse``'s.

Layout choices, each measured at 10M events on a 2-core machine (``make bench``):
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

On a ClickHouse cluster (``AUTHTRAIL_CLICKHOUSE_CLUSTER``) the same migrations create
``auth_events_local`` as a ``ReplicatedReplacingMergeTree`` on every node (``ON CLUSTER``)
and ``auth_events`` as a ``Distributed`` table over it, sharded by event id: a redelivered
twin lands on the shard of its first copy, where ``ReplacingMergeTree`` collapses it.
Everything reads and writes ``auth_events`` either way, so the queries are the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from schemas.settings import Settings, redact_url

EVENTS_TABLE = "auth_events"
EVENTS_LOCAL_TABLE = "auth_events_local"  # the rows' table on each node of a cluster
MIGRATIONS_TABLE = "schema_migrations"
INGEST_REQUESTS_TABLE = "ingest_requests"  # POST /api/v1/events answers by Idempotency-Key
# The rollups of the events (migration 5): counts per hour (accounts, types, outcomes) and
# per day (actors), for the facets and the timeline.
HOURLY_TABLE = "auth_events_hourly"
DAILY_TABLE = "auth_events_daily"
ACTORS_DAILY_TABLE = "auth_events_actors_daily"
ACTORS_4W_TABLE = "auth_events_actors_4w"
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
    """``single_node``: only on a single server (embedded or not); on a cluster the
    version is recorded and its statements are not run."""

    version: int
    description: str
    statements: tuple[str, ...]
    single_node: bool = False


# The rollups (migration 5): name -> (seconds per row, columns beside the time and the
# count, sorting key). Accounts, types and outcomes per hour and per day (no actor: that
# would be nearly a row per event), ordered by account so one account's timeline reads its
# own rows; the actors per day and per 4 weeks (the users facet, and the accounts facet
# under a user filter). A row's time is the start of its unit, units counted from the Unix
# epoch in UTC (``toDateTime(intDiv(...))``: the same cut in SQL and in Python). Each
# rollup's TTL keeps a row until every event it counts is past retention
# (``apply_retention`` keeps it the events table's); the repository reads a rollup only
# where it is exact (see ``query_api.repository``).
_COUNTED: tuple[tuple[str, str], ...] = (
    ("account_id", "String"),
    ("account_name", "String"),
    ("event_key", "LowCardinality(String)"),
    ("description", "LowCardinality(String)"),
    ("outcome", "Enum8('success' = 1, 'failure' = 2)"),
)
_ACTORS: tuple[tuple[str, str], ...] = (
    ("account_id", "String"),
    ("account_name", "String"),
    ("actor_display", "String"),
    ("actor_type", "Enum8('anonymous' = 0, 'user' = 1, 'agent' = 2, 'service' = 3)"),
    ("actor_id", "String"),
    ("actor_email", "String"),
)
_COUNTED_KEY = "account_id, at, event_key, outcome, account_name, description"
_ACTORS_KEY = "at, account_id, actor_display, actor_id, actor_email, actor_type, account_name"
ROLLUPS: dict[str, tuple[int, tuple[tuple[str, str], ...], str]] = {
    HOURLY_TABLE: (3600, _COUNTED, _COUNTED_KEY),
    DAILY_TABLE: (86400, _COUNTED, _COUNTED_KEY),
    ACTORS_DAILY_TABLE: (86400, _ACTORS, _ACTORS_KEY),
    ACTORS_4W_TABLE: (28 * 86400, _ACTORS, _ACTORS_KEY),
}


def rollup_unit_sql(seconds: int, column: str = "occurred_at") -> str:
    """The start of the ``seconds``-long unit holding ``column``, as DateTime('UTC')."""
    return f"toDateTime(intDiv(toUnixTimestamp({column}), {seconds}) * {seconds}, 'UTC')"


def _rollup_statements() -> tuple[str, ...]:
    """Per rollup: its table, its materialized view, and the count of the rows stored
    before (the view counts every insert from its creation on)."""
    out: list[str] = []
    for name, (seconds, columns, key) in ROLLUPS.items():
        names = ", ".join(c for c, _ in columns)
        typed = ", ".join(f"{c} {t}" for c, t in columns)
        table = "{db}." + name
        select = (
            f"SELECT {rollup_unit_sql(seconds)} AS at, {names}, count() AS n "
            f"FROM {{events}} GROUP BY at, {names}"
        )
        out += [
            f"CREATE TABLE IF NOT EXISTS {table} (at DateTime('UTC'), {typed}, n UInt64, "
            "INDEX ix_at at TYPE minmax GRANULARITY 1) "
            f"ENGINE = SummingMergeTree PARTITION BY toYYYYMM(at) ORDER BY ({key}) "
            f"TTL at + toIntervalSecond({seconds}) + toIntervalDay({{retention_days}})",
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {table}_mv TO {table} AS {select}",
            f"INSERT INTO {table} {select}",
        ]
    return tuple(out)


# Statements are formatted with {db}, {retention_days}, and from the ``StoreLocation``:
# {events} (the events' storage table, with ON CLUSTER on a cluster) and {replacing_engine}.
# Never change what a released migration does: add a new one. On a cluster, a migration
# that changes columns must change the Distributed table too (``{front}``).
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "auth_events log table",
        (
            """
            CREATE TABLE IF NOT EXISTS {events}
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
            ENGINE = {replacing_engine}
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
            "ALTER TABLE {events} MODIFY SETTING "
            "min_compress_block_size = 8192, max_compress_block_size = 16384",
        ),
    ),
    Migration(
        3,
        "ingest_requests: answers of POST /api/v1/events by Idempotency-Key, for 24 h",
        # Kept in the store rather than in a topic: a lookup by (token, key) is a primary
        # key read here, and no API process has to hold a day of answers in memory.
        (
            """
            CREATE TABLE IF NOT EXISTS {requests}
            (
                token_id        String,
                key             String,
                request_sha256  String,
                answer          String CODEC(ZSTD(1)),
                created_at      DateTime64(3, 'UTC')
            )
            ENGINE = {requests_engine}
            ORDER BY (token_id, key)
            TTL toDateTime(created_at) + INTERVAL 1 DAY
            """,
        ),
    ),
    Migration(
        4,
        "lightweight updates (erasure)",
        # An erasure rewrites a person's rows with UPDATE: patch parts that reads apply at
        # once, instead of a mutation rewriting whole parts before anything changes.
        (
            "ALTER TABLE {events} MODIFY SETTING "
            "enable_block_number_column = 1, enable_block_offset_column = 1",
        ),
    ),
    Migration(
        5,
        "rollups for the facets and the timeline: counts per hour and per day",
        # The facets and one account's timeline counted the events table's rows: at 10M
        # events 0.3-0.75 s. SummingMergeTree tables fed by materialized views hold the
        # counts instead (``ROLLUPS``), the repository reading the coarsest that fits.
        _rollup_statements(),
        # On a cluster each shard would need its own rollups behind Distributed tables,
        # and the backfill an INSERT per shard: not done yet, the queries read the events.
        single_node=True,
    ),
)


_SQL_STRING_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'"})


def sql_string(value: str) -> str:
    """``value`` as a ClickHouse string literal (backslash and quote escaped), for the
    text of statements that cannot take bound parameters (a TTL) and the writer's dedupe
    query. Mind braces: clickhouse-connect reads ``{name:Type}`` as a parameter in a
    statement sent with parameters."""
    return "'" + value.translate(_SQL_STRING_ESCAPES) + "'"


class StoreUnavailableError(RuntimeError):
    """The log store cannot be opened; the message says why and what to do."""


_CLUSTER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$")


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """Where the log store lives, parsed from ``AUTHTRAIL_CLICKHOUSE_URL`` and
    ``AUTHTRAIL_CLICKHOUSE_CLUSTER``."""

    url: str
    database: str
    cluster: str | None = None

    @property
    def events_table(self) -> str:
        """The table every query reads and every write goes to."""
        return f"{self.database}.{EVENTS_TABLE}"

    @property
    def storage_name(self) -> str:
        """The MergeTree table holding the rows (on each node of a cluster)."""
        return EVENTS_LOCAL_TABLE if self.cluster else EVENTS_TABLE

    @property
    def storage_table(self) -> str:
        return f"{self.database}.{self.storage_name}"

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER '{self.cluster}'" if self.cluster else ""

    def engine(self, table: str, kind: str, *, sharded: bool = True) -> str:
        """``kind`` (e.g. ``ReplacingMergeTree``), replicated on a cluster: per shard, or
        on every node (``sharded=False``, for the small bookkeeping tables)."""
        if not self.cluster:
            return kind
        shard = "{shard}" if sharded else "all"
        return (
            f"Replicated{kind}('/clickhouse/tables/{shard}/{self.database}/{table}', '{{replica}}')"
        )

    def front_statement(self) -> str | None:
        """The Distributed table in front of the shards (None on a single server)."""
        if not self.cluster:
            return None
        return (
            f"CREATE TABLE IF NOT EXISTS {self.events_table}{self.on_cluster} "
            f"AS {self.storage_table} ENGINE = Distributed('{self.cluster}', "
            f"'{self.database}', '{self.storage_name}', cityHash64(event_id))"
        )

    def migration_fields(self, retention_days: int) -> dict[str, object]:
        """What the ``MIGRATIONS`` statements are formatted with."""
        return {
            "db": self.database,
            "retention_days": int(retention_days),
            "events": self.storage_table + self.on_cluster,
            "front": self.events_table + self.on_cluster,
            "replacing_engine": self.engine(self.storage_name, "ReplacingMergeTree"),
            "requests": f"{self.database}.{INGEST_REQUESTS_TABLE}{self.on_cluster}",
            "requests_engine": self.engine(
                INGEST_REQUESTS_TABLE, "ReplacingMergeTree", sharded=False
            ),
        }

    @property
    def rollups(self) -> bool:
        """Whether the store has the rollups of migration 5 (a single server)."""
        return self.cluster is None

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
    def parse(cls, url: str, cluster: str | None = None) -> StoreLocation:
        """Raises ``StoreUnavailableError`` naming what is wrong (never the password)."""
        parts = urlsplit(url)
        if cluster is not None and not _CLUSTER_NAME.fullmatch(cluster):
            raise StoreUnavailableError(f"invalid ClickHouse cluster name {cluster!r}")
        if parts.scheme == "chdb":
            if not parts.path or parts.path == "/":
                raise StoreUnavailableError("a chdb:// URL needs a directory: chdb:///var/lib/x")
            if cluster:
                raise StoreUnavailableError(
                    "AUTHTRAIL_CLICKHOUSE_CLUSTER needs a ClickHouse server "
                    "(AUTHTRAIL_CLICKHOUSE_URL=http(s)://...), not the embedded store"
                )
            return cls(url, DEFAULT_DATABASE)
        if parts.scheme in ("http", "https"):
            database = parts.path.strip("/") or DEFAULT_DATABASE
            if not database.replace("_", "").isalnum():
                raise StoreUnavailableError(f"invalid ClickHouse database name {database!r}")
            return cls(url, database, cluster or None)
        raise StoreUnavailableError(
            f"AUTHTRAIL_CLICKHOUSE_URL must start with chdb://, http:// or https://, "
            f"not {parts.scheme or 'nothing'}:// ({redact_url(url)})"
        )


def location_of(settings: Settings) -> StoreLocation:
    """The log store ``settings`` name (``AUTHTRAIL_CLICKHOUSE_URL``, ``_CLUSTER``)."""
    return StoreLocation.parse(settings.resolved_clickhouse_url, settings.clickhouse_cluster)


def bookkeeping(location: StoreLocation) -> list[str]:
    db = location.database
    return [
        f"CREATE DATABASE IF NOT EXISTS {db}{location.on_cluster}",
        f"CREATE TABLE IF NOT EXISTS {db}.{MIGRATIONS_TABLE}{location.on_cluster} "
        "(version UInt32, description String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        f"ENGINE = {location.engine(MIGRATIONS_TABLE, 'MergeTree', sharded=False)} "
        "ORDER BY version",
    ]


def ddl(location: StoreLocation, retention_days: int) -> list[str]:
    """Every statement ``migrate`` runs on an empty database, in order: for a DBA to review
    (``authtrail store ddl``) before pointing authtrail at a production cluster."""
    fields = location.migration_fields(retention_days)
    statements = bookkeeping(location)
    for migration in MIGRATIONS:
        if migration.single_node and location.cluster:
            continue
        statements += [statement.format(**fields) for statement in migration.statements]
    front = location.front_statement()
    return statements + ([front] if front else [])
