"""Saved views of the Logs page: a name for a filter and a sort, owned by the token that
saved it, private or shared with every caller who may see what it shows."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Value = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


class ViewFilter(BaseModel):
    """The Logs view's filters as its URL holds them (the query parameters of
    ``GET /api/v1/logs``); relative ranges stay relative."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    q: Annotated[str, StringConstraints(max_length=1024)] | None = None
    account: Annotated[list[Value], Field(max_length=100)] = []
    user: Annotated[list[Value], Field(max_length=100)] = []
    type: Annotated[list[Value], Field(max_length=100)] = []
    outcome: Literal["success", "failure"] | None = None
    range: Literal["today", "1h", "24h", "7d", "30d"] | None = None
    from_: datetime | None = Field(None, alias="from")
    to: datetime | None = None
    tz: Annotated[str, StringConstraints(max_length=64)] = "UTC"


class ViewIn(BaseModel):
    """What saving a view takes."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    filter: ViewFilter = ViewFilter()
    sort: Literal["time", "log"] = "time"
    order: Literal["desc", "asc"] = "desc"
    shared: bool = Field(
        False, description="Visible to every caller who may read its account (else: its owner)."
    )


class SavedView(ViewIn):
    """A saved view. ``account``: the one account its filter stays inside (a view saved
    by an account-scoped token, or whose account filter is one account), which is what
    account-scoped tokens may see; None: it spans accounts."""

    id: str
    owner: str = Field(description="The id of the token that saved it.")
    owner_name: str
    account: str | None
    created_at: datetime


def new_view_id() -> str:
    return "vw_" + secrets.token_hex(6)
