"""Writes normalized events into the log store (ClickHouse / chDB).

Rows are inserted column-wise with clickhouse-connect ``insert()``: the fast path measured
in design.md (100x faster than ``VALUES``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import orjson
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import (
    DatabaseError,
    DataError,
    OperationalError,
    ProgrammingError,
)

from schemas.clickhouse import EVENT_COLUMNS, EVENTS_TABLE, StoreLocation
from schemas.events import NormalizedEvent

log = logging.getLogger(__name__)

# ClickHouse error codes that blame the data, not the server: retrying the same rows
# cannot succeed, so the batch is bisected down to the rows at fault.
_DATA_ERROR_CODES = frozenset(
    {6, 27, 38, 41, 53, 69, 70, 72, 117, 131, 190, 321, 386, 395, 469}  # 469: CHECK failed
)
_CODE_RE = re.compile(r"Code: (\d+)\.")


class TransientStoreError(RuntimeError):
    """The store did not take the batch for a reason that may pass (down, overloaded,
    out of disk). Nothing of the batch may be considered stored; retry it whole."""


_ATTRIBUTES_INDEX = EVENT_COLUMNS.index("attributes")


class EventWriter:
    """Inserts batches of ``NormalizedEvent`` into the events table.

    Contract of ``write``: stores the events whose id the table does not hold yet; returns
    the events the store refused for good (each with the store's reason) after every other
    event of the batch is stored; raises
    ``TransientStoreError`` when the store is unreachable or failing, in which case the
    caller must retry the whole batch. Re-writing stored events is harmless: they are
    skipped (and the table collapses a twin that a concurrent writer slipped in).

    One writer per thread (it owns a client)."""

    def __init__(self, client: Client, location: StoreLocation, table: str = EVENTS_TABLE) -> None:
        self._client = client
        self._table = f"{location.database}.{table}"

    def write(self, events: Sequence[NormalizedEvent]) -> list[tuple[NormalizedEvent, str]]:
        if not events:
            return []
        try:
            stored = self._already_stored(events)
        except Exception as exc:
            raise TransientStoreError(_describe(exc)) from None
        fresh = [e for e in events if e.event_id not in stored]
        return self._write(fresh) if fresh else []

    def _already_stored(self, events: Sequence[NormalizedEvent]) -> set[str]:
        """Ids of ``events`` the table holds already (a batch re-read after a crash).
        The time bounds keep this a primary-key range read, however large the table."""
        times = [e.occurred_at for e in events]
        rows = self._client.query(
            f"SELECT event_id FROM {self._table} "
            "WHERE occurred_at >= {lo:DateTime64(3, 'UTC')} "
            "AND occurred_at <= {hi:DateTime64(3, 'UTC')} AND event_id IN {ids:Array(String)}",
            parameters={
                "lo": min(times),
                "hi": max(times),
                "ids": [e.event_id for e in events],
            },
        ).result_rows
        return {row[0] for row in rows}

    def _write(self, events: list[NormalizedEvent]) -> list[tuple[NormalizedEvent, str]]:
        try:
            self._insert(events)
            return []
        except Exception as exc:
            if not _blames_data(exc):
                raise TransientStoreError(_describe(exc)) from None
            if len(events) == 1:
                log.warning("store refused event %s: %s", events[0].event_id, _describe(exc))
                return [(events[0], f"refused by the log store: {_describe(exc)}")]
            middle = len(events) // 2
            return self._write(events[:middle]) + self._write(events[middle:])

    def _insert(self, events: list[NormalizedEvent]) -> None:
        rows = []
        for event in events:
            row = [getattr(event, column) for column in EVENT_COLUMNS]
            row[_ATTRIBUTES_INDEX] = orjson.dumps(event.attributes).decode()
            rows.append(row)
        self._client.insert(
            self._table,
            rows,
            column_names=list(EVENT_COLUMNS),
            # History imports may span many months; never fail a batch for that.
            settings={"throw_on_max_partitions_per_insert_block": 0},
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


def _describe(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"
