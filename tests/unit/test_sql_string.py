"""The dedupe query's hand-escaped literal reads back as the value it was made from."""

from __future__ import annotations

import chdb
import orjson
import pytest

from schemas.log_store import sql_string


@pytest.mark.parametrize(
    "value", ["plain", "it's", "back\\slash", "\\'", "'; DROP TABLE x; --", "a,b\nc", "ünï"]
)
def test_literal_round_trips(value: str) -> None:
    result = chdb.query(f"SELECT {sql_string(value)} AS v", "JSONEachRow").bytes()
    assert orjson.loads(result)["v"] == value
