"""The Logs view's filters: parsing and validating query parameters into a ``LogFilter``
(the search, ``q``, in the query language of ``query_api.query_language``), and the
account scope of the caller."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Depends, Query

from query_api.query_language import MAX_LENGTH, Node, QueryError, parse
from schemas.views import ViewFilter

RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
RangeName = Literal["today", "1h", "24h", "7d", "30d"]
MAX_VALUES = 100
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2299, 12, 31, tzinfo=UTC)
MAX_VALUE_LEN = 256


class BadParameterError(Exception):
    """A request parameter is invalid; answered 400 naming it."""

    def __init__(self, parameter: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Every filter of the Logs view, resolved: times are absolute UTC instants."""

    query: Node | None = None
    accounts: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    outcome: Literal["success", "failure"] | None = None
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    tz: str = "UTC"

    def scoped_to(self, account: str | None) -> LogFilter:
        """This filter for a caller who may only see ``account`` (None: everything).
        Asking for another account explicitly is refused, not silently emptied."""
        if account is None:
            return self
        others = [a for a in self.accounts if a != account]
        if others:
            raise BadParameterError("account", f"this token can only read account {account!r}", 403)
        return replace(self, accounts=(account,))

    def without(self, dimension: Literal["accounts", "users", "types"]) -> LogFilter:
        if dimension == "accounts":
            return replace(self, accounts=())
        if dimension == "users":
            return replace(self, users=())
        return replace(self, types=())


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadParameterError("tz", f"unknown IANA time zone {tz[:64]!r}") from None


def _values(name: str, values: list[str]) -> tuple[str, ...]:
    if len(values) > MAX_VALUES:
        raise BadParameterError(name, f"at most {MAX_VALUES} values")
    out = []
    for value in values:
        text = value.strip()
        if not text or len(text) > MAX_VALUE_LEN:
            raise BadParameterError(name, f"values must be 1-{MAX_VALUE_LEN} characters")
        out.append(text)
    return tuple(dict.fromkeys(out))


def resolve_window(
    range_: RangeName | None,
    start: datetime | None,
    end: datetime | None,
    tz: str,
    now: datetime | None = None,
) -> tuple[datetime | None, datetime | None]:
    """Absolute [start, end) for a named range or explicit bounds."""
    zone = _zone(tz)
    if range_ is not None:
        if start is not None or end is not None:
            raise BadParameterError("range", "use either range or from/to, not both")
        moment = now or datetime.now(UTC)
        if range_ == "today":
            local = moment.astimezone(zone)
            midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
            return midnight.astimezone(UTC), None
        return moment - RANGES[range_], None
    for name, value in (("from", start), ("to", end)):
        if value is None:
            continue
        if value.tzinfo is None:
            raise BadParameterError(name, "needs a UTC offset (RFC 3339, e.g. 2026-11-26T12:00Z)")
        if not EARLIEST <= value <= LATEST:
            raise BadParameterError(name, "must be between 1970 and 2299")
    if start is not None and end is not None and start >= end:
        raise BadParameterError("to", "must be after from")
    return (start.astimezone(UTC) if start else None, end.astimezone(UTC) if end else None)


QUERY_DESCRIPTION = """The search, in the query language (the README's "Query language").

Terms: `account:ID`, `user:ID|EMAIL|anonymous`, `ip:ADDRESS|CIDR`, `type:KEY|PREFIX.*`,
`outcome:success|failure`, `trace:ID`, `ua:TEXT`, `browser:TEXT`, `os:TEXT`, `country:CC`,
`reason:TEXT`, `attributes.PATH:VALUE`, `time:DATE`, `time:>=T` (also `>`, `<=`, `<`),
`time:[A TO B]` (ends included), `time:{A TO B}` (excluded; `*`: open); a bare word or
`"quoted text"` is searched as an IP address, a trace id, an event key prefix or text
anywhere. A DATE is a whole day in `tz`; a date-time needs its offset.

Grammar: `query := or; or := and ("OR" and)*; and := unary (["AND"] unary)*;
unary := ("NOT" | "-") unary | "(" or ")" | term; term := FIELD ":" value | word | "text"`.
A query that does not parse is a 400 naming `q`, the position and what was expected."""


def filters_without_search(
    account: Annotated[list[str] | None, Query(description="Account id (repeatable).")] = None,
    user: Annotated[
        list[str] | None,
        Query(description="Actor id or email (repeatable); 'anonymous': events without actor."),
    ] = None,
    type_: Annotated[
        list[str] | None, Query(alias="type", description="Event key (repeatable).")
    ] = None,
    outcome: Annotated[Literal["success", "failure"] | None, Query()] = None,
    from_: Annotated[
        datetime | None, Query(alias="from", description="RFC 3339, inclusive.")
    ] = None,
    to: Annotated[datetime | None, Query(description="RFC 3339, exclusive.")] = None,
    range_: Annotated[RangeName | None, Query(alias="range")] = None,
    tz: Annotated[str, Query(max_length=64, description="IANA time zone for 'today'.")] = "UTC",
) -> LogFilter:
    """FastAPI dependency: the request's filters but the search, validated (for the facets,
    whose own ``q`` narrows their values)."""
    start, end = resolve_window(range_, from_, to, tz)
    return LogFilter(
        accounts=_values("account", account or []),
        users=_values("user", user or []),
        types=tuple(t.lower() for t in _values("type", type_ or [])),
        outcome=outcome,
        start=start,
        end=end,
        tz=tz,
    )


def log_filter(
    base: Annotated[LogFilter, Depends(filters_without_search)],
    q: Annotated[str | None, Query(max_length=MAX_LENGTH, description=QUERY_DESCRIPTION)] = None,
) -> LogFilter:
    """FastAPI dependency: the request's filters, the search included, validated."""
    term = q.strip() if q else ""
    try:
        query = parse(term, base.tz) if term else None
    except QueryError as exc:
        raise BadParameterError("q", str(exc)) from None
    return replace(base, query=query)


def view_filter(view: ViewFilter, account: str | None) -> LogFilter:
    """A saved view's filters for a caller who may only see ``account`` (None: every
    account), checked as ``log_filter`` and ``scoped_to`` check a request's (the
    ``BadParameterError`` names ``filter.<parameter>``)."""
    try:
        base = filters_without_search(
            account=view.account,
            user=view.user,
            type_=view.type,
            outcome=view.outcome,
            from_=view.from_,
            to=view.to,
            range_=view.range,
            tz=view.tz,
        )
        return log_filter(base, view.q).scoped_to(account)
    except BadParameterError as exc:
        raise BadParameterError(f"filter.{exc.parameter}", exc.message, exc.status) from None
