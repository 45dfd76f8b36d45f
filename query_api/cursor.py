"""Opaque keyset cursors: the sort key of the last row of a page, so the next page starts
strictly after it. Keyset paging returns each row exactly once even while new events
arrive (they sort before the cursor on a newest-first view)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson


class InvalidCursorError(ValueError):
    """The cursor was not produced by this API (or was altered)."""


@dataclass(frozen=True, slots=True)
class Cursor:
    occurred_at: datetime
    event_id: str

    def encode(self) -> str:
        ms = int(self.occurred_at.timestamp() * 1000)
        payload = orjson.dumps({"v": 1, "t": ms, "id": self.event_id})
        return base64.urlsafe_b64encode(payload).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            padded = text + "=" * (-len(text) % 4)
            data = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            if not isinstance(data, dict) or data.get("v") != 1:
                raise InvalidCursorError("unknown cursor version")
            ms, event_id = data["t"], data["id"]
            if not isinstance(ms, int) or not isinstance(event_id, str) or len(event_id) > 128:
                raise InvalidCursorError("malformed cursor")
            return cls(datetime.fromtimestamp(ms / 1000, tz=UTC), event_id)
        except InvalidCursorError:
            raise
        except (
            binascii.Error,
            UnicodeError,
            orjson.JSONDecodeError,
            KeyError,
            ValueError,
            OverflowError,
            OSError,
        ):
            raise InvalidCursorError("not a cursor returned by this API") from None
