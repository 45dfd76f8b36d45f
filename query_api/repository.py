"""Reads the log store for the Logs view. Every value reaches ClickHouse as a bound
parameter.

Duplicates: the writer never stores an event id twice (it checks before inserting), and
the table collapses any that a race still lets through in its merges. Reads do not use
``FINAL`` (it disables the primary-key read-in-order and projections that make the view
fast); instead pages and exports drop a duplicate, which always sits next to its twin
because ``event_id`` ends every sort key. Counts (timeline, facets) may include such a
twin until the next merge."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson
from clickhouse_connect.driver.client import Client

from infra.clickhouse.client import connect, current_ttl, schema_version
from query_api import sql
from query_api.cursor import Cursor
from query_api.filters import BadParameterError, LogFilter
from query_api.models import (
    EventDetail,
    Facet,
    FacetValue,
    LogItem,
    LogPage,
    Timeline,
    TimelineBucket,
)
from query_api.sql import (
    SORT_KEYS,
    FacetName,
    OrderName,
    SortName,
    Where,
    keyset,
    order_by,
    utc,
    where,
)
from schemas.log_store import StoreLocation
from schemas.retention import shortest_days

_NEVER_NULL = {
    "event_id",
    "occurred_at",
    "event_key",
    "description",
    "outcome",
    "actor_display",
    "actor_type",
    "received_at",
    "attributes",
    "raw",
    "schema_version",
}
EXPORT_CHUNK = 50_000

BUCKETS: dict[str, int] = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "6h": 21600,
    "12h": 43200,
    "1d": 86400,
    "7d": 604800,
}
TARGET_BUCKETS = 120
MAX_BUCKETS = 5000

ROLLUPS_VERSION = 5  # the schema version that has the rollups
_RETENTION_TTL_S = 10.0  # how long the retention read for the rollups is reused

# Below this many rows a log text's rows are sorted with its neighbours' rather than read
# alone in time order (see ``LogRepository._rows_by_text``).
_FEW_ROWS = 20_000


def _row(row: dict[str, Any]) -> dict[str, Any]:
    values = {k: (None if v == "" and k not in _NEVER_NULL else v) for k, v in row.items()}
    values["account_display"] = row.get("account_name") or row.get("account_id") or "-"
    return values


class LogRepository:
    """Queries for the Logs view. Thread-safe: each call borrows a client that no other
    call uses until it is given back, so no clickhouse-connect client is ever used by two
    threads at once (chDB releases the GIL during a query, so calls on different threads
    query in parallel, each on its own client).

    Clients are lent from a pool rather than kept per thread: an export's steps run on
    whichever threadpool worker is free (see ``export``), and the threadpool retires idle
    workers (anyio: after 10 s), so per-thread clients would pile up unused until
    ``close``. The pool holds at most as many clients as calls ever ran at once."""

    def __init__(
        self,
        location: StoreLocation,
        client_factory: Callable[[], Client] | None = None,
        query_timeout_s: float | None = None,
        export_chunk: int | None = None,
    ) -> None:
        """``query_timeout_s`` bounds each query (ClickHouse's ``max_execution_time``): a
        query over it raises ClickHouse's ``TIMEOUT_EXCEEDED`` rather than holding a
        thread (the API answers it 503). ``export_chunk``: rows per query of an export
        (None: ``EXPORT_CHUNK``)."""
        self.location = location
        self._factory = client_factory or (lambda: connect(location))
        self.query_timeout_s = query_timeout_s
        self.export_chunk = export_chunk
        self.table = location.events_table
        self._pool = threading.Condition()
        self._idle: list[Client] = []  # given back, ready to lend
        self._lent: dict[int, Client] = {}  # id(client) -> client, out on loan
        self._generation = 0  # bumped by close(): a client lent before it is not reused
        # (when read, the shortest retention in days) for the rollups; see _rollup_split
        self._retention: tuple[float, int | None] | None = None

    def _open(self) -> Client:
        client = self._factory()
        try:
            if self.query_timeout_s is not None:
                client.set_client_setting("max_execution_time", self.query_timeout_s)
                client.set_client_setting("timeout_overflow_mode", "throw")
        except BaseException:
            client.close()
            raise
        return client

    @contextlib.contextmanager
    def _borrowed(self) -> Iterator[Client]:
        """A client for the calling thread alone until the block ends. A block must not
        contain a ``yield``: a generator's next step may run on another thread, and a
        generator its reader abandons is finalised whenever and wherever it is
        collected, so a client held across a yield would be shared or never given back."""
        with self._pool:
            generation = self._generation
            client = self._idle.pop() if self._idle else None
            if client is not None:
                self._lent[id(client)] = client
        if client is None:
            client = self._open()  # outside the lock: connecting may take a while
            with self._pool:
                self._lent[id(client)] = client
        try:
            yield client
        finally:
            with self._pool:
                reuse = generation == self._generation
                if reuse:
                    self._idle.append(client)
                    del self._lent[id(client)]
                    self._pool.notify_all()
            if not reuse:
                # close() ran while this call had the client: it is closed here, on this
                # (live) thread, once nothing uses it.
                try:
                    client.close()
                finally:
                    with self._pool:
                        del self._lent[id(client)]
                        self._pool.notify_all()

    def borrowed(self) -> contextlib.AbstractContextManager[Client]:
        """A client of the store for the calling thread until the block ends (for the
        API's own small tables beside the events)."""
        return self._borrowed()

    def close(self, timeout_s: float | None = 30.0) -> None:
        """Closes every client: the idle ones now, and waits (up to ``timeout_s``) for the
        calls in flight to finish and close theirs; one still running after that closes
        its client when it ends. The repository stays usable: a later call opens a new
        client. Call it from a live thread, never leave it to the interpreter's exit:
        chDB must not tear its sessions down from threads the interpreter is already
        finalising (it crashes the process)."""
        with self._pool:
            self._generation += 1
            idle, self._idle = self._idle, []
            # The clients themselves, not their ids: held here, no new client can take
            # the id of one that is closed and gone meanwhile.
            retiring = list(self._lent.values())
        for client in idle:
            client.close()
        with self._pool:
            self._pool.wait_for(lambda: all(id(c) not in self._lent for c in retiring), timeout_s)

    # -- list ----------------------------------------------------------------------------
    def page(
        self,
        f: LogFilter,
        sort: SortName = "time",
        order: OrderName = "desc",
        limit: int = 50,
        cursor: Cursor | None = None,
    ) -> LogPage:
        """One page of matching rows in the given order, strictly after ``cursor``."""
        if cursor is not None:
            f = _pinned(f, cursor)
        key_columns = [c for c, _ in SORT_KEYS[sort]]
        after = list(cursor.key) if cursor is not None else None
        rows: list[dict[str, Any]] = []
        last_id = None
        with self._borrowed() as client:
            while len(rows) <= limit:
                w = where(f)
                if after is not None:
                    keyset(w, sort, order, after)
                wanted = limit + 1 - len(rows)
                if sort == "log":
                    batch = self._rows_by_text(client, w, order, wanted)
                else:
                    batch = self._rows(client, w, order_by(sort, order), wanted)
                for row in batch:
                    if row["event_id"] != last_id:  # a not yet merged twin sits next to it
                        rows.append(row)
                    last_id = row["event_id"]
                if len(batch) < wanted:
                    break
                after = [_key_value(batch[-1][c]) for c in key_columns]
        items = [LogItem.model_validate(_row(r)) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            key = tuple(_key_value(last[c]) for c in key_columns)
            next_cursor = Cursor(sort, order, key, f.start, f.end).encode()
        return LogPage(items=items, next_cursor=next_cursor)

    def _rows(self, client: Client, w: Where, order_sql: str, limit: int) -> list[dict[str, Any]]:
        statement = sql.rows(self.table, w, order_sql)
        return list(
            client.query(statement, parameters={**w.params, "limit": limit}).named_results()
        )

    def _rows_by_text(
        self, client: Client, w: Where, order: OrderName, limit: int
    ) -> list[dict[str, Any]]:
        """The first ``limit`` rows of ``w`` sorted by log text, then time, then id.

        One ORDER BY over all three sorts every matching row (430-600 ms at 10M events).
        Instead, one GROUP BY over the text column alone (LowCardinality: it reads
        dictionary indexes) counts the rows of each text, in text order. A text with many
        rows is read alone in primary-key (time) order, which stops after ``limit`` rows
        (~10 ms); consecutive texts with few rows are read together and sorted (cheap:
        few rows). Reading stops once ``limit`` rows are in."""
        counts = client.query(
            sql.texts_counted(self.table, w, order), parameters=w.params
        ).result_rows
        rows: list[dict[str, Any]] = []
        few: list[str] = []

        def read_few() -> None:
            if few:
                texts = sql.with_texts(w, list(few))
                rows.extend(self._rows(client, texts, order_by("log", order), limit - len(rows)))
                few.clear()

        pending = 0
        for text, count in counts:
            if count <= _FEW_ROWS:
                few.append(text)
                pending += count
                if len(rows) + pending >= limit:
                    break
                continue
            read_few()
            pending = 0
            if len(rows) >= limit:
                break
            alone = sql.with_text(w, text)
            rows.extend(self._rows(client, alone, order_by("time", order), limit - len(rows)))
            if len(rows) >= limit:
                break
        read_few()
        return rows

    def count(self, f: LogFilter) -> int:
        w = where(f)
        with self._borrowed() as client:
            result = client.query(sql.count(self.table, w), parameters=w.params)
        return int(result.result_rows[0][0])

    # -- one event -----------------------------------------------------------------------
    def get(self, event_id: str, account: str | None = None) -> EventDetail | None:
        """The event, or None when unknown or outside ``account`` (no existence leak)."""
        statement, params = sql.event(self.table, event_id, account)
        with self._borrowed() as client:
            rows = list(client.query(statement, parameters=params).named_results())
        if not rows:
            return None
        values = _row(rows[0])
        values["attributes"] = orjson.loads(values["attributes"] or "{}")
        with contextlib.suppress(orjson.JSONDecodeError):  # shown as text then
            values["raw"] = orjson.loads(values["raw"])
        return EventDetail.model_validate(values)

    # -- export --------------------------------------------------------------------------
    def export(self, f: LogFilter, fmt: Literal["csv", "ndjson"]) -> Iterator[bytes]:
        """Every matching row, newest first, formatted by ClickHouse itself, read in
        keyset chunks (``export_chunk`` rows) so memory stays flat however large the export.

        Any thread may run any step (each ``next()``), and no client is held between
        steps: Starlette's ``StreamingResponse`` runs each ``next()`` of this generator on
        whichever threadpool worker is free (``iterate_in_threadpool``), so each step
        borrows a client and gives it back before it yields."""
        size = self.export_chunk or EXPORT_CHUNK
        settings = {
            "date_time_output_format": "iso",
            "output_format_json_quote_64bit_integers": 0,
            "output_format_json_escape_forward_slashes": 0,
        }
        after: list[Any] | None = None
        first = True
        while True:
            w = where(f)
            if after is not None:
                keyset(w, "time", "desc", after)
            fmt_name = ("CSVWithNames" if first else "CSV") if fmt == "csv" else "JSONEachRow"
            with self._borrowed() as client:
                statement, params = sql.export_boundary(self.table, w, size)
                found = client.query(statement, parameters=params).result_rows
                boundary = (utc(found[0][0]), str(found[0][1])) if found else None
                statement, params = sql.export_chunk(self.table, w, boundary, fmt)
                data = client.raw_query(
                    statement, parameters=params, fmt=fmt_name, settings=settings
                )
            if data:
                yield bytes(data)
            first = False
            if boundary is None:
                return
            after = list(boundary)

    # -- timeline ------------------------------------------------------------------------
    def timeline(
        self, f: LogFilter, bucket: str | None = None, now: datetime | None = None
    ) -> Timeline:
        """Success/failure counts per bucket over the filter's window (or the data's
        extent when the filter has no start), zero-filled."""
        with self._borrowed() as client:
            return self._timeline(client, f, bucket, now)

    def _timeline(
        self, client: Client, f: LogFilter, bucket: str | None, now: datetime | None
    ) -> Timeline:
        end = f.end or (now or datetime.now(UTC))
        start = f.start
        if start is None:
            w = where(f)
            extent = client.query(sql.extent(self.table, w), parameters=w.params).result_rows
            if not extent or not extent[0][1]:
                return Timeline(
                    bucket_seconds=BUCKETS[bucket or "1h"], start=None, end=end, buckets=[]
                )
            start = utc(extent[0][0])
        span = max((end - start).total_seconds(), 1)
        if bucket is None:
            seconds = next(
                (s for s in BUCKETS.values() if span / s <= TARGET_BUCKETS), BUCKETS["7d"]
            )
        else:
            seconds = BUCKETS[bucket]
            if span / seconds > MAX_BUCKETS:
                raise BadParameterError(
                    "bucket",
                    f"{bucket} buckets over this range would be "
                    f"more than {MAX_BUCKETS}; choose a larger bucket",
                )
        w = where(f)
        statement, params = sql.timeline(self.table, w, seconds), {**w.params, "tz": f.tz}
        hourly = sql.rollup_for(f) is sql.COUNTS and _whole_hours(f, seconds, start, end)
        cut = self._rollup_split(client, f, sql.HOURLY) if hourly else None
        if cut is not None:
            statement, params = sql.timeline_rolled(self.table, f, cut, seconds)
        counts = {
            datetime.fromtimestamp(b, UTC): (s, fl)
            for b, s, fl in client.query(statement, parameters=params).result_rows
        }
        return Timeline(
            bucket_seconds=seconds, start=start, end=end, buckets=_fill(counts, start, end, seconds)
        )

    # -- facets --------------------------------------------------------------------------
    def facet(self, name: FacetName, f: LogFilter, q: str | None, limit: int) -> Facet:
        """The values of one dimension under the other filters, most frequent first."""
        statement, params = sql.facet(self.table, name, where(f), q, limit)
        with self._borrowed() as client:
            rollup = sql.rollup_for(f, name)
            cut = self._rollup_split(client, f, rollup) if rollup is not None else None
            if rollup is not None and cut is not None:
                statement, params = sql.facet_rolled(self.table, name, f, cut, q, limit)
            rows = client.query(statement, parameters=params).result_rows
        return Facet(
            name=name,
            values=[FacetValue(value=v, label=str(lbl or v), count=n) for v, lbl, n in rows],
        )

    # -- rollups -------------------------------------------------------------------------
    def _rollup_split(
        self, client: Client, f: LogFilter, rollup: sql.Rollup | None
    ) -> sql.Split | None:
        """Where ``rollup`` answers for ``f`` (None: the events table answers alone).

        A rollup counts every event since it was created (migration 5 counted the ones
        before), so it equals the events table wherever no event has been deleted by the
        retention TTL: from the shortest retention of any account on (rounded up to its
        unit), its whole units are exact. Time before that, and the partial units at the
        range's edges, are read from the events table."""
        if rollup is None or not self.location.rollups:
            return None
        days = self._shortest_retention(client)
        if days is None:
            return None
        floor = datetime.now(UTC) - timedelta(days=days)
        return sql.split(f, rollup, self.location.database, floor)

    def _shortest_retention(self, client: Client) -> int | None:
        """The fewest days an account keeps its events (the events table's TTL), read at
        most every ``_RETENTION_TTL_S``; None when the store has no rollups."""
        now = time.monotonic()
        cached = self._retention
        if cached is not None and now - cached[0] < _RETENTION_TTL_S:
            return cached[1]
        if schema_version(client, self.location) < ROLLUPS_VERSION:
            days = None
        else:
            days = shortest_days(current_ttl(client, self.location))
        self._retention = (now, days)
        return days

    def schema_version(self) -> int:
        """The log store's schema version (the health probe)."""
        with self._borrowed() as client:
            return schema_version(client, self.location)


def _whole_hours(f: LogFilter, seconds: int, start: datetime, end: datetime) -> bool:
    """Whether every hour falls in one timeline bucket: buckets of whole hours, in a time
    zone whose offset is a whole number of hours over the range."""
    if seconds % 3600:
        return False
    zone = ZoneInfo(f.tz)
    return all(
        (moment.astimezone(zone).utcoffset() or timedelta()).total_seconds() % 3600 == 0
        for moment in (start, end)
    )


def _key_value(value: Any) -> Any:
    return utc(value) if isinstance(value, datetime) else value


def _pinned(f: LogFilter, cursor: Cursor) -> LogFilter:
    return replace(f, start=cursor.start, end=cursor.end)


def _fill(
    counts: dict[datetime, tuple[int, int]], start: datetime, end: datetime, seconds: int
) -> list[TimelineBucket]:
    """Every bucket from the one holding ``start`` to the one holding ``end``."""
    if not counts:
        return []
    keys = sorted(counts)
    step = timedelta(seconds=seconds)
    # ClickHouse aligned the buckets (day buckets to the time zone's midnight); walk back
    # from the first one to the bucket holding start, then forward to end.
    cursor = keys[0]
    while cursor > start:
        cursor -= step
    buckets = {}
    while cursor < end:
        success, failure = counts.get(cursor, (0, 0))
        buckets[cursor] = TimelineBucket(start=cursor, success=success, failure=failure)
        cursor += step
    for key in keys:  # a bucket aligned off the walk (a DST change) is never lost
        if key not in buckets:
            buckets[key] = TimelineBucket(start=key, success=counts[key][0], failure=counts[key][1])
    return [buckets[k] for k in sorted(buckets)]
