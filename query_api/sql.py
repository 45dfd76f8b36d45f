"""SQL for the Logs view: every statement ``query_api.repository`` runs is written here.
Every value is a bound parameter (``{name:Type}``); only the table name (from settings),
column names and keywords chosen from fixed tables here, and integers computed here are
ever formatted into a statement."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from query_api.filters import LogFilter
from query_api.query_language import And, Attribute, Bare, Match, Moment, Node, Not, Or, Search
from schemas.log_store import (
    ACTORS_4W_TABLE,
    ACTORS_DAILY_TABLE,
    DAILY_TABLE,
    EVENT_COLUMNS,
    HOURLY_TABLE,
    ROLLUPS,
)

# What a row of the Logs view needs: everything but the bulky and internal columns.
LIST_COLUMNS: tuple[str, ...] = tuple(
    c for c in EVENT_COLUMNS if c not in {"received_at", "attributes", "raw", "schema_version"}
)
EXPORT_COLUMNS: tuple[str, ...] = tuple(c for c in EVENT_COLUMNS if c not in {"raw"})

SortName = Literal["time", "log"]
OrderName = Literal["desc", "asc"]

# The sort key of each sort, ending in the unique event_id so every key is a total order.
SORT_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "time": (("occurred_at", "DateTime64(3, 'UTC')"), ("event_id", "String")),
    "log": (
        ("description", "String"),
        ("occurred_at", "DateTime64(3, 'UTC')"),
        ("event_id", "String"),
    ),
}
TEXT_SEARCH_COLUMNS = (
    "event_key",
    "description",
    "user_agent",
    "trace_id",
    "ip",
    "actor_email",
    "actor_id",
    "actor_display",
)


@dataclass(slots=True)
class Where:
    """A conjunction of conditions with their parameters."""

    clauses: list[str]
    params: dict[str, Any]

    def add(self, clause: str, **params: Any) -> None:
        self.clauses.append(clause)
        self.params.update(params)

    def sql(self) -> str:
        return ("WHERE " + " AND ".join(self.clauses)) if self.clauses else ""


def where(f: LogFilter) -> Where:
    """The conditions of a filter."""
    w = Where([], {})
    if f.query is not None:
        w.add(condition(f.query, w.params))
    if f.accounts:
        w.add("account_id IN {accounts:Array(String)}", accounts=list(f.accounts))
    if f.users:
        named = [u for u in f.users if u != "anonymous"]
        parts = []
        if "anonymous" in f.users:
            parts.append("(actor_id = '' AND actor_email = '')")
        if named:
            parts.append(
                "actor_id IN {users:Array(String)} OR actor_email IN {users:Array(String)}"
            )
        w.add("(" + " OR ".join(parts) + ")", users=named)
    if f.types:
        w.add("event_key IN {types:Array(String)}", types=list(f.types))
    if f.outcome is not None:
        w.add("outcome = {outcome:String}", outcome=f.outcome)
    if f.start is not None:
        w.add("occurred_at >= {start:DateTime64(3, 'UTC')}", start=f.start)
    if f.end is not None:
        w.add("occurred_at < {end:DateTime64(3, 'UTC')}", end=f.end)
    return w


_DATETIME = "DateTime64(3, 'UTC')"
# field -> (column, how it compares): "=" equal, "~" case-insensitive substring.
_MATCHES: dict[str, tuple[str, str]] = {
    "account": ("account_id", "="),
    "trace": ("trace_id", "="),
    "outcome": ("outcome", "="),
    "country": ("country", "="),
    "reason": ("reason", "="),
    "ua": ("user_agent", "~"),
    "browser": ("ua_browser", "~"),
    "os": ("ua_os", "~"),
}


def condition(node: Node, params: dict[str, Any]) -> str:
    """The SQL condition of a query (``query_api.query_language``); every value it holds
    is added to ``params`` (as ``qN``) and appears in the SQL only as ``{qN:Type}``."""

    def bind(value: Any, type_: str = "String") -> str:
        name = f"q{len(params)}"
        while name in params:
            name += "_"
        params[name] = value
        return f"{{{name}:{type_}}}"

    if isinstance(node, And):
        return "(" + " AND ".join(condition(item, params) for item in node.items) + ")"
    if isinstance(node, Or):
        return "(" + " OR ".join(condition(item, params) for item in node.items) + ")"
    if isinstance(node, Not):
        return f"NOT ({condition(node.item, params)})"
    if isinstance(node, Bare):
        return _search(node.search, bind)
    if isinstance(node, Moment):
        bounds = []
        if node.start is not None:
            bounds.append(f"occurred_at >= {bind(node.start, _DATETIME)}")
        if node.end is not None:
            bounds.append(f"occurred_at < {bind(node.end, _DATETIME)}")
        return "(" + " AND ".join(bounds or ["1"]) + ")"
    if isinstance(node, Attribute):
        path = ", ".join(bind(step) for step in node.path)
        value = bind(node.value)
        # Text equal to the value, or a number or boolean written as it.
        return (
            f"(JSONExtractString(attributes, {path}) = {value} "
            f"OR JSONExtractRaw(attributes, {path}) = {value})"
        )
    return _match(node, bind)


def _match(node: Match, bind: Callable[..., str]) -> str:
    if node.field == "user":
        if node.value == "anonymous":
            return "(actor_id = '' AND actor_email = '')"
        value = bind(node.value)
        return f"(actor_id = {value} OR actor_email = {value})"
    if node.field == "type":
        value = bind(node.value)
        return f"startsWith(event_key, {value})" if node.prefix else f"event_key = {value}"
    if node.field == "ip":
        if not node.network:
            return f"ip = {bind(node.value)}"
        network = ipaddress.ip_network(node.value)
        low, high = bind(str(network[0])), bind(str(network[-1]))
        # An IPv4 network never matches an IPv6 address, nor the reverse (the store folds
        # IPv4-mapped IPv6 to IPv4).
        if network.version == 4:
            return (
                f"(isIPv4String(ip) AND toIPv4OrZero(ip) BETWEEN toIPv4({low}) AND toIPv4({high}))"
            )
        return f"(isIPv6String(ip) AND toIPv6OrZero(ip) BETWEEN toIPv6({low}) AND toIPv6({high}))"
    column, compare = _MATCHES[node.field]
    value = bind(node.value)
    if compare == "~":
        return f"positionCaseInsensitiveUTF8({column}, {value}) > 0"
    return f"{column} = {value}"


def _search(search: Search, bind: Callable[..., str]) -> str:
    """A bare term (``query_language.classify``)."""
    value = bind(search.value)
    if search.kind == "ip":
        return f"ip = {value}"
    if search.kind == "trace_id":
        return f"trace_id = {value}"
    if search.kind == "event_key_prefix":
        return f"startsWith(event_key, {value})"
    any_column = " OR ".join(
        f"positionCaseInsensitiveUTF8({c}, {value}) > 0" for c in TEXT_SEARCH_COLUMNS
    )
    return f"({any_column})"


def keyset(w: Where, sort: SortName, order: OrderName, values: list[Any]) -> None:
    """Adds "strictly after ``values`` in this sort" to ``w``."""
    columns = SORT_KEYS[sort]
    names = ", ".join(c for c, _ in columns)
    placeholders = ", ".join(f"{{k{i}:{t}}}" for i, (_, t) in enumerate(columns))
    op = "<" if order == "desc" else ">"
    # The redundant bound on the leading column is what lets the primary key skip: the
    # tuple comparison alone is not used for index analysis.
    lead, lead_type = columns[0]
    w.add(f"{lead} {op}= {{k0:{lead_type}}}")
    w.add(f"({names}) {op} ({placeholders})", **{f"k{i}": v for i, v in enumerate(values)})


def order_by(sort: SortName, order: OrderName) -> str:
    direction = "DESC" if order == "desc" else "ASC"
    return "ORDER BY " + ", ".join(f"{c} {direction}" for c, _ in SORT_KEYS[sort])


def rows(table: str, w: Where, order_sql: str) -> str:
    """The Logs view's rows of ``w`` in ``order_sql``; takes ``{limit:UInt32}``."""
    return (
        f"SELECT {', '.join(LIST_COLUMNS)} FROM {table} {w.sql()} "
        f"{order_sql} LIMIT {{limit:UInt32}}"
    )


def texts_counted(table: str, w: Where, order: OrderName) -> str:
    """(log text, rows) of ``w`` per log text, in text order."""
    direction = "DESC" if order == "desc" else "ASC"
    return (
        f"SELECT description, count() FROM {table} {w.sql()} "
        f"GROUP BY description ORDER BY description {direction}"
    )


def with_texts(w: Where, texts: list[str]) -> Where:
    """``w`` narrowed to rows whose log text is one of ``texts``."""
    narrowed = Where(list(w.clauses), dict(w.params))
    narrowed.add("description IN {texts:Array(String)}", texts=texts)
    return narrowed


def with_text(w: Where, text: str) -> Where:
    """``w`` narrowed to rows of one log text."""
    narrowed = Where(list(w.clauses), dict(w.params))
    narrowed.add("description = {text:String}", text=text)
    return narrowed


def count(table: str, w: Where) -> str:
    return f"SELECT count() FROM {table} {w.sql()}"


def event(table: str, event_id: str, account: str | None) -> tuple[str, dict[str, Any]]:
    """One event by id, within ``account`` when given."""
    w = Where([], {})
    w.add("event_id = {id:String}", id=event_id)
    if account is not None:
        w.add("account_id = {scope:String}", scope=account)
    return f"SELECT {', '.join(EVENT_COLUMNS)} FROM {table} {w.sql()} LIMIT 1", w.params


def export_boundary(table: str, w: Where, size: int) -> tuple[str, dict[str, Any]]:
    """The (occurred_at, event_id) of the ``size``-th row of ``w``, newest first: where
    an export chunk ends (no row when fewer remain)."""
    params = {**w.params, "skip": size - 1}
    sql = (
        f"SELECT occurred_at, event_id FROM {table} {w.sql()} "
        f"{order_by('time', 'desc')} LIMIT 1 OFFSET {{skip:UInt32}}"
    )
    return sql, params


def export_chunk(
    table: str, w: Where, boundary: tuple[datetime, str] | None, fmt: Literal["csv", "ndjson"]
) -> tuple[str, dict[str, Any]]:
    """The rows of ``w`` down to ``boundary`` (inclusive; all when None), newest first,
    each event once; NDJSON carries attributes as an object, CSV as the JSON text."""
    chunk = Where(list(w.clauses), dict(w.params))
    if boundary is not None:
        chunk.add("occurred_at >= {b0:DateTime64(3, 'UTC')}", b0=boundary[0])
        chunk.add(
            "(occurred_at, event_id) >= ({b0:DateTime64(3, 'UTC')}, {b1:String})",
            b1=boundary[1],
        )
    columns = ", ".join(
        "CAST(attributes, 'JSON') AS attributes" if c == "attributes" and fmt == "ndjson" else c
        for c in EXPORT_COLUMNS
    )
    sql = (
        f"SELECT {columns} FROM {table} {chunk.sql()} "
        f"{order_by('time', 'desc')} LIMIT 1 BY event_id"
    )
    return sql, chunk.params


def extent(table: str, w: Where) -> str:
    """(first occurred_at, rows) of ``w``."""
    return f"SELECT min(occurred_at), count() FROM {table} {w.sql()}"


def timeline(table: str, w: Where, seconds: int) -> str:
    """(bucket start as epoch seconds, successes, failures) per ``seconds``-long bucket,
    aligned in the time zone ``{tz:String}`` (day buckets to its midnight)."""
    interval = (
        f"toIntervalDay({seconds // 86400})"
        if seconds % 86400 == 0
        else f"toIntervalSecond({int(seconds)})"
    )
    return (
        "SELECT toUnixTimestamp(toStartOfInterval(occurred_at, "
        f"{interval}, {{tz:String}})) AS bucket, "
        "countIf(outcome = 'success'), countIf(outcome = 'failure') "
        f"FROM {table} {w.sql()} GROUP BY bucket ORDER BY bucket"
    )


FacetName = Literal["accounts", "users", "types"]
FACETS: dict[str, tuple[str, str, str]] = {
    # name: (value column, label column (any of it per value), extra condition)
    "accounts": ("account_id", "account_name", "account_id != ''"),
    "users": ("actor_display", "actor_type", "1"),
    "types": ("event_key", "description", "1"),
}


def facet(
    table: str, name: FacetName, w: Where, q: str | None, limit: int
) -> tuple[str, dict[str, Any]]:
    """(value, label, rows) of one dimension under ``w``, most frequent first; ``q``
    narrows to values or labels containing it (case-insensitive)."""
    value, label, condition = FACETS[name]
    w = Where([*w.clauses, condition], {**w.params, "limit": limit})
    if q:
        w.add(
            f"(positionCaseInsensitiveUTF8({value}, {{fq:String}}) > 0 OR "
            f"positionCaseInsensitiveUTF8(toString({label}), {{fq:String}}) > 0)",
            fq=q,
        )
    sql = (
        f"SELECT {value} AS value, any({label}) AS label, count() AS n FROM {table} "
        f"{w.sql()} GROUP BY value ORDER BY n DESC, value LIMIT {{limit:UInt32}}"
    )
    return sql, w.params


def utc(value: datetime) -> datetime:
    """ClickHouse returns naive UTC datetimes for DateTime64(3, 'UTC')."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# -- rollups (migration 5) --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rollup:
    """A family of rollups of the events table (``schemas.log_store.ROLLUPS``), finest
    first, carrying the filters ``filters`` and the facets ``facets`` exactly."""

    tables: tuple[str, ...]
    filters: frozenset[str]
    facets: frozenset[str]

    def units(self) -> tuple[int, ...]:
        return tuple(ROLLUPS[t][0] for t in self.tables)


COUNTS = Rollup(
    (HOURLY_TABLE, DAILY_TABLE),
    frozenset({"accounts", "types", "outcome"}),
    frozenset({"accounts", "types"}),
)
ACTORS = Rollup(
    (ACTORS_DAILY_TABLE, ACTORS_4W_TABLE),
    frozenset({"accounts", "users"}),
    frozenset({"users", "accounts"}),
)
HOURLY = Rollup((HOURLY_TABLE,), COUNTS.filters, frozenset())  # the timeline's


def rollup_for(f: LogFilter, facet_name: str | None = None) -> Rollup | None:
    """The rollups that answer ``f`` (and the facet) exactly, or None: a search (``q``)
    or a filter they do not carry needs the events table."""
    if f.query is not None:
        return None
    used = {
        name
        for name, on in (
            ("accounts", bool(f.accounts)),
            ("users", bool(f.users)),
            ("types", bool(f.types)),
            ("outcome", f.outcome is not None),
        )
        if on
    }
    for rollup in (COUNTS, ACTORS):
        if used <= rollup.filters and (facet_name is None or facet_name in rollup.facets):
            return rollup
    return None


@dataclass(frozen=True, slots=True)
class Split:
    """A filter's range cut by rollup: ``ranges[k]``, ``[lo, hi)`` (hi None: unbounded),
    is what ``tables[k]`` answers less what the coarser ``tables[k + 1]`` does; the events
    table answers the rest (partial units at the range's edges, and time before the
    first range, where a rollup may not be exact)."""

    tables: tuple[str, ...]
    ranges: tuple[tuple[datetime, datetime | None], ...]

    def rollup_wheres(self, f: LogFilter) -> list[tuple[str, Where]]:
        out = []
        for k, (lo, hi) in enumerate(self.ranges):
            w = where(replace(f, start=None, end=None))
            w.add(f"at >= {{r{k}lo:DateTime('UTC')}}", **{f"r{k}lo": lo})
            if hi is not None:
                w.add(f"at < {{r{k}hi:DateTime('UTC')}}", **{f"r{k}hi": hi})
            if k + 1 < len(self.ranges):
                inner_lo, inner_hi = self.ranges[k + 1]
                outside = [f"at < {{r{k + 1}lo:DateTime('UTC')}}"]
                if inner_hi is not None:
                    outside.append(f"at >= {{r{k + 1}hi:DateTime('UTC')}}")
                w.add(
                    "(" + " OR ".join(outside) + ")",
                    **{f"r{k + 1}lo": inner_lo, f"r{k + 1}hi": inner_hi},
                )
            out.append((self.tables[k], w))
        return out

    def events_where(self, f: LogFilter) -> Where | None:
        """The events outside the first range (None: there are none to read)."""
        lo, hi = self.ranges[0]
        pieces = []
        params: dict[str, Any] = {}
        if f.start is None or f.start < lo:
            pieces.append(f"occurred_at < {{elo:{_DATETIME}}}")
            params["elo"] = lo
        if hi is not None and (f.end is None or f.end > hi):
            pieces.append(f"occurred_at >= {{ehi:{_DATETIME}}}")
            params["ehi"] = hi
        if not pieces:
            return None
        w = where(f)
        w.add("(" + " OR ".join(pieces) + ")", **params)
        return w


def split(f: LogFilter, rollup: Rollup, database: str, floor: datetime) -> Split | None:
    """``f``'s range as whole units of ``rollup``'s tables from ``floor`` on (the earliest
    time they are exact from) and the rest; None when no whole unit is left."""
    units = rollup.units()
    lo = _ceil(max(f.start, floor) if f.start is not None else floor, units[0])
    hi = _floor(f.end, units[0]) if f.end is not None else None
    if hi is not None and lo >= hi:
        return None
    ranges: list[tuple[datetime, datetime | None]] = [(lo, hi)]
    for unit in units[1:]:
        lo = _ceil(lo, unit)
        hi = _floor(hi, unit) if hi is not None else None
        if hi is not None and lo >= hi:
            break
        ranges.append((lo, hi))
    tables = tuple(f"{database}.{t}" for t in rollup.tables[: len(ranges)])
    return Split(tables, tuple(ranges))


def _floor(moment: datetime, unit: int) -> datetime:
    seconds = int(moment.timestamp() // 1)
    return datetime.fromtimestamp(seconds - seconds % unit, UTC)


def _ceil(moment: datetime, unit: int) -> datetime:
    low = _floor(moment, unit)
    return low if low == moment else datetime.fromtimestamp(low.timestamp() + unit, UTC)


def facet_rolled(
    events_table: str, name: FacetName, f: LogFilter, cut: Split, q: str | None, limit: int
) -> tuple[str, dict[str, Any]]:
    """``facet`` answered from the rollups for ``cut``'s whole units, and from the events
    for the rest: the same rows."""
    value, label, condition = FACETS[name]
    search = (
        f"(positionCaseInsensitiveUTF8({value}, {{fq:String}}) > 0 OR "
        f"positionCaseInsensitiveUTF8(toString({label}), {{fq:String}}) > 0)"
    )
    sources: list[tuple[str, Where, str]] = [(t, w, "sum(n)") for t, w in cut.rollup_wheres(f)]
    edges = cut.events_where(f)
    if edges is not None:
        sources.append((events_table, edges, "count()"))
    parts = []
    params: dict[str, Any] = {"limit": limit}
    for table, w, count in sources:
        w.add(condition)
        if q:
            w.add(search, fq=q)
        params.update(w.params)
        parts.append(
            f"SELECT {value} AS value, any({label}) AS label, {count} AS n FROM {table} "
            f"{w.sql()} GROUP BY value"
        )
    sql = (
        "SELECT value, any(label) AS label, sum(n) AS n FROM ("
        + " UNION ALL ".join(parts)
        + ") GROUP BY value ORDER BY n DESC, value LIMIT {limit:UInt32}"
    )
    return sql, params


def timeline_rolled(
    events_table: str, f: LogFilter, cut: Split, seconds: int
) -> tuple[str, dict[str, Any]]:
    """``timeline`` answered from the hourly rollup for ``cut``'s whole hours, and from the
    events for the rest; ``seconds`` a multiple of an hour in a time zone whose offsets
    are whole hours, so every hour falls in one bucket."""
    interval = (
        f"toIntervalDay({seconds // 86400})"
        if seconds % 86400 == 0
        else f"toIntervalSecond({int(seconds)})"
    )
    params: dict[str, Any] = {"tz": f.tz}
    parts = []
    for table, w in cut.rollup_wheres(f):
        params.update(w.params)
        parts.append(
            f"SELECT toUnixTimestamp(toStartOfInterval(at, {interval}, {{tz:String}})) "
            "AS bucket, sumIf(n, outcome = 'success') AS s, sumIf(n, outcome = 'failure') "
            f"AS fl FROM {table} {w.sql()} GROUP BY bucket"
        )
    edges = cut.events_where(f)
    if edges is not None:
        params.update(edges.params)
        parts.append(
            "SELECT toUnixTimestamp(toStartOfInterval(occurred_at, "
            f"{interval}, {{tz:String}})) AS bucket, "
            "countIf(outcome = 'success') AS s, countIf(outcome = 'failure') AS fl "
            f"FROM {events_table} {edges.sql()} GROUP BY bucket"
        )
    sql = (
        "SELECT bucket, sum(s), sum(fl) FROM ("
        + " UNION ALL ".join(parts)
        + ") GROUP BY bucket ORDER BY bucket"
    )
    return sql, params
