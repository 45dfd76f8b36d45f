"""Opaque keyset cursors: the sort key of a page's last row, plus the time window the
first page resolved (so a relative range like ``1h`` does not slide while paging). Keyset
paging returns each matching row exactly once, also while new events arrive."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from query_api.sql import SORT_KEYS, OrderName, SortName


class InvalidCursorError(ValueError):
    """The cursor was not produced by this API for this sort (or was altered)."""


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _dt(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, int):
        raise InvalidCursorError("malformed cursor")
    return datetime.fromtimestamp(value / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class Cursor:
    sort: SortName
    order: OrderName
    key: tuple[Any, ...]
    start: datetime | None = None
    end: datetime | None = None

    def encode(self) -> str:
        key = [_ms(v) if isinstance(v, datetime) else v for v in self.key]
        payload = orjson.dumps(
            {
                "v": 2,
                "s": self.sort,
                "o": self.order,
                "k": key,
                "w": [_ms(self.start), _ms(self.end)],
            }
        )
        return base64.urlsafe_b64encode(payload).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, sort: SortName, order: OrderName) -> Cursor:
        try:
            padded = text + "=" * (-len(text) % 4)
            data = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        except (binascii.Error, UnicodeError, orjson.JSONDecodeError, ValueError):
            raise InvalidCursorError("not a cursor returned by this API") from None
        if not isinstance(data, dict) or data.get("v") != 2:
            raise InvalidCursorError("not a cursor returned by this API")
        if data.get("s") != sort or data.get("o") != order:
            raise InvalidCursorError("the cursor belongs to another sort or order")
        raw_key, window = data.get("k"), data.get("w")
        columns = SORT_KEYS[sort]
        if not isinstance(raw_key, list) or len(raw_key) != len(columns):
            raise InvalidCursorError("malformed cursor")
        if not isinstance(window, list) or len(window) != 2:
            raise InvalidCursorError("malformed cursor")
        key: list[Any] = []
        for (_name, type_), value in zip(columns, raw_key, strict=True):
            if type_.startswith("DateTime"):
                key.append(_dt(value))
            elif isinstance(value, str) and len(value) <= 1024:
                key.append(value)
            else:
                raise InvalidCursorError("malformed cursor")
        try:
            return cls(sort, order, tuple(key), _dt(window[0]), _dt(window[1]))
        except (OverflowError, OSError, ValueError):
            raise InvalidCursorError("malformed cursor") from None
