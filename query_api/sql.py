"""SQL for the Logs view. Every value is a bound parameter (``{name:Type}``); only column
names and keywords chosen from fixed tables here are ever formatted into a statement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from query_api.filters import LogFilter

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
    if f.search is not None:
        kind, value = f.search.kind, f.search.value
        if kind == "ip":
            w.add("ip = {q:String}", q=value)
        elif kind == "trace_id":
            w.add("trace_id = {q:String}", q=value)
        elif kind == "event_key_prefix":
            w.add("startsWith(event_key, {q:String})", q=value)
        else:
            any_column = " OR ".join(
                f"positionCaseInsensitiveUTF8({c}, {{q:String}}) > 0" for c in TEXT_SEARCH_COLUMNS
            )
            w.add(f"({any_column})", q=value)
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


def utc(value: datetime) -> datetime:
    """ClickHouse returns naive UTC datetimes for DateTime64(3, 'UTC')."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
