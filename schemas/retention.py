"""How long each account's events are kept: ``AUTHTRAIL_RETENTION_DAYS`` for every
account, unless an admin set the account its own (``authtrail retention set``,
``PUT /api/v1/accounts/{id}/retention``).

The per-account days live in the compacted ``authtrail.account-retention`` topic (one
record per account; a tombstone returns it to the default). The log store applies them as
its table's TTL expression, ``ttl_expression``: a ``transform`` of the account id to its
days, deterministic as ClickHouse requires of a TTL, so rows inserted later need nothing
of the writer, and ``ALTER ... MODIFY TTL`` recomputes the TTL of the rows already stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from schemas.events import MAX_ID
from schemas.log_store import sql_string

MIN_DAYS, MAX_DAYS = 1, 36_500
AccountId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID)
]
Days = Annotated[int, Field(ge=MIN_DAYS, le=MAX_DAYS)]


class RetentionIn(BaseModel):
    """``PUT /api/v1/accounts/{id}/retention``."""

    days: Days = Field(description="Keep this account's events this many days.")


class AccountRetention(BaseModel):
    """One account's own retention, as the topic keeps it."""

    account: AccountId
    days: Days
    set_by: str = Field(description="The token (name) or CLI user that set it.")
    set_at: datetime


def ttl_expression(
    default_days: int, accounts: Mapping[str, int], moment: str = "toDateTime(occurred_at)"
) -> str:
    """The events table's TTL: ``occurred_at`` plus the account's days (the default for
    accounts without their own). Account ids are written as escaped string literals in a
    stable order, so the same settings give the same text (compared before altering).
    ``moment``: the row's time (a rollup's: the end of the hour or day it counts)."""
    if not accounts:
        return f"{moment} + toIntervalDay({int(default_days)})"
    ids = sorted(accounts)
    keys = ", ".join(sql_string(a) for a in ids)
    days = ", ".join(str(int(accounts[a])) for a in ids)
    return (
        f"{moment} + toIntervalDay(transform(account_id, [{keys}], "
        f"CAST([{days}], 'Array(UInt16)'), toUInt16({int(default_days)})))"
    )


_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'")
_DAYS = re.compile(r"toIntervalDay\((.*)\)\s*$", re.S)


def shortest_days(ttl: str) -> int | None:
    """The fewest days any account keeps its events, from the events table's TTL as
    ``ttl_expression`` writes it (None when ``ttl`` is not of that shape)."""
    match = _DAYS.search(_STRING_LITERAL.sub("''", ttl))
    if match is None:
        return None
    days = [int(n) for n in re.findall(r"\b\d+\b", match.group(1))]
    return min(days) if days else None
