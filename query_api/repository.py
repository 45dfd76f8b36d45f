"""Reads the log store. Every value reaches ClickHouse as a bound parameter.

Reads use ``FINAL`` so an event delivered twice (at-least-once ingest) shows once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from clickhouse_connect.driver.client import Client

from query_api.cursor import Cursor
from query_api.models import LogItem, LogPage
from schemas.clickhouse import EVENT_COLUMNS, EVENTS_TABLE, StoreLocation, connect, schema_version

# What a row of the Logs view needs: everything but the bulky and internal columns.
LIST_COLUMNS: tuple[str, ...] = tuple(
    c for c in EVENT_COLUMNS if c not in {"received_at", "attributes", "raw", "schema_version"}
)
_NULL_WHEN_EMPTY = frozenset(LIST_COLUMNS) - {
    "event_id",
    "occurred_at",
    "event_key",
    "description",
    "outcome",
    "actor_display",
    "actor_type",
}


class LogRepository:
    """Queries for the Logs view. Thread-safe: each thread gets its own client (chDB
    releases the GIL during a query, so threads query in parallel)."""

    def __init__(self, location: StoreLocation, client_factory: Callable[[], Client] | None = None):
        self.location = location
        self._factory = client_factory or (lambda: connect(location))
        self._local = threading.local()
        self._table = f"{location.database}.{EVENTS_TABLE}"

    def _client(self) -> Client:
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._factory()
            self._local.client = client
        return client

    def latest(self, limit: int, cursor: Cursor | None = None) -> LogPage:
        """Newest first; ``limit`` rows after ``cursor``."""
        where = ""
        params: dict[str, Any] = {"limit": limit + 1}
        if cursor is not None:
            where = "WHERE (occurred_at, event_id) < ({c_ts:DateTime64(3, 'UTC')}, {c_id:String})"
            params["c_ts"] = cursor.occurred_at
            params["c_id"] = cursor.event_id
        sql = (
            f"SELECT {', '.join(LIST_COLUMNS)} FROM {self._table} FINAL {where} "
            "ORDER BY occurred_at DESC, event_id DESC LIMIT {limit:UInt32}"
        )
        rows = self._client().query(sql, parameters=params).named_results()
        items = [_item(row) for row in rows]
        next_cursor = None
        if len(items) > limit:
            items = items[:limit]
            last = items[-1]
            next_cursor = Cursor(last.occurred_at, last.event_id).encode()
        return LogPage(items=items, next_cursor=next_cursor)

    def schema_version(self) -> int:
        return schema_version(self._client(), self.location)


def _item(row: dict[str, Any]) -> LogItem:
    values = {k: (v if v != "" or k not in _NULL_WHEN_EMPTY else None) for k, v in row.items()}
    values["account_display"] = row["account_name"] or row["account_id"] or "-"
    return LogItem.model_validate(values)
