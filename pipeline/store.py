"""Writes normalized events into the log store (ClickHouse / chDB).

Rows go in as ``INSERT ... FORMAT JSONEachRow`` of the same JSON the pipeline produces to
``auth-events.normalized``: the event is encoded once, and ClickHouse parses it in C++
with the GIL released (61k rows/s here, against 32-47k/s for clickhouse-connect's
column-wise ``insert()``, which builds the columns in Python)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime

import msgspec
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import (
    DatabaseError,
    DataError,
    OperationalError,
    ProgrammingError,
)

from schemas.events import NormalizedEvent
from schemas.log_store import StoreLocation, sql_string

log = logging.getLogger(__name__)

# ClickHouse error codes that blame the data, not the server: retrying the same rows
# cannot succeed, so the batch is bisected down to the rows at fault.
_DATA_ERROR_CODES = frozenset(
    {6, 26, 27, 38, 41, 53, 69, 70, 72, 117, 131, 190, 321, 386, 395, 469}  # 469: CHECK failed
)
_INSERT_SETTINGS = {
    # History imports may span many months; never fail a batch for that.
    "throw_on_max_partitions_per_insert_block": 0,
    # ``attributes`` is a JSON object in the event and JSON text in its column.
    "input_format_json_read_objects_as_strings": 1,
    "date_time_input_format": "best_effort",
    "input_format_skip_unknown_fields": 0,
}
_CODE_RE = re.compile(r"Code: (\d+)\.")


class TransientStoreError(RuntimeError):
    """The store did not take the batch for a reason that may pass (down, overloaded,
    out of disk). Nothing of the batch may be considered stored; retry it whole."""


class Row(msgspec.Struct, frozen=True, array_like=True, tag="row"):
    """A normalized event as the store and the normalized topic need it: its JSON
    (``event.to_json()``, encoded once for both), plus the fields they route and dedupe
    on. Small and msgpack-able: it crosses from the normalizer process in bulk."""

    event_id: str
    occurred_at: datetime
    key: str  # the normalized record's key: the account, else the actor, else the event
    json: bytes

    @classmethod
    def of(cls, event: NormalizedEvent) -> Row:
        key = event.account_id or event.actor_id or event.event_id
        return cls(event.event_id, event.occurred_at, key, event.to_json())


class EventWriter:
    """Inserts batches of rows into the events table.

    Contract of ``write``: stores the rows whose event id the table does not hold yet;
    returns the rows the store refused for good (each with the store's reason) after
    every other row of the batch is stored; raises ``TransientStoreError`` when the store
    is unreachable or failing, in which case the caller must retry the whole batch.
    Re-writing stored events is harmless: they are skipped (and the table collapses a
    twin that a concurrent writer slipped in).

    One writer per thread (it owns a client)."""

    def __init__(self, client: Client, location: StoreLocation) -> None:
        self._client = client
        self._table = location.events_table
        # On a cluster the insert goes through the Distributed table: wait until the
        # shards have the rows, or "stored" would mean "queued on this node's disk".
        self._settings = (
            {**_INSERT_SETTINGS, "distributed_foreground_insert": 1}
            if location.cluster
            else _INSERT_SETTINGS
        )

    def write(self, rows: Sequence[Row]) -> list[tuple[Row, str]]:
        if not rows:
            return []
        try:
            stored = self._already_stored(rows)
        except Exception as exc:
            raise TransientStoreError(_describe(exc)) from None
        fresh = [row for row in rows if row.event_id not in stored]
        return self._write(fresh) if fresh else []

    def _already_stored(self, events: Sequence[Row]) -> set[str]:
        """Ids of ``events`` the table holds already (a batch re-read after a crash).
        The time bounds keep this a primary-key range read, however large the table.

        The ids go in as one string literal escaped here with ``str.translate``:
        clickhouse-connect's binding escapes character by character in Python, which cost
        20 µs per id and held the GIL the event loop needs."""
        times = [e.occurred_at for e in events]
        ids = sql_string(",".join(e.event_id for e in events))
        rows = self._client.query(
            f"SELECT event_id FROM {self._table} "
            "WHERE occurred_at >= {lo:DateTime64(3, 'UTC')} "
            "AND occurred_at <= {hi:DateTime64(3, 'UTC')} "
            f"AND event_id IN (SELECT arrayJoin(splitByChar(',', {ids})))",
            parameters={"lo": min(times), "hi": max(times)},
        ).result_rows
        return {row[0] for row in rows}

    def _write(self, rows: list[Row]) -> list[tuple[Row, str]]:
        try:
            self._insert(rows)
            return []
        except Exception as exc:
            if not _blames_data(exc):
                raise TransientStoreError(_describe(exc)) from None
            if len(rows) == 1:
                log.warning("store refused event %s: %s", rows[0].event_id, _describe(exc))
                return [(rows[0], f"refused by the log store: {_describe(exc)}")]
            middle = len(rows) // 2
            return self._write(rows[:middle]) + self._write(rows[middle:])

    def _insert(self, rows: list[Row]) -> None:
        self._client.raw_insert(
            self._table,
            insert_block=b"\n".join(row.json for row in rows),
            fmt="JSONEachRow",
            settings=self._settings,
        )


def _blames_data(exc: Exception) -> bool:
    """True when the rows are at fault: a server error code about the data, or the client
    failing to encode a value. Connection and server-side failures are transient."""
    if isinstance(exc, OperationalError):
        return False
    if isinstance(exc, DatabaseError):
        match = _CODE_RE.search(str(exc))
        return match is not None and int(match.group(1)) in _DATA_ERROR_CODES
    return isinstance(exc, DataError | ProgrammingError | ValueError | TypeError | OverflowError)


def _describe(exc: Exception, limit: int = 400) -> str:
    """``exc`` on one line, at most ``limit`` characters. ClickHouse names the error at the
    end of its message ("... (NOT_ENOUGH_SPACE)"), so a long one keeps its head and tail."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = f"{text[: limit - 80]} … {text[-70:]}"
    return f"{type(exc).__name__}: {text}"
