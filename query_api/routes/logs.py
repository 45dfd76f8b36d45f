"""``/api/v1/logs``: list, detail, export, timeline; ``/api/v1/facets``."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from query_api.auth import Viewer
from query_api.cursor import Cursor, InvalidCursorError
from query_api.filters import BadParameterError
from query_api.models import EventDetail, Facet, LogPage, Timeline
from query_api.repository import BUCKETS
from query_api.routes.deps import Filter, FilterWithoutSearch, Repo
from query_api.sql import OrderName, SortName

router = APIRouter(prefix="/api/v1", tags=["logs"])

BucketName = Literal["1m", "5m", "15m", "30m", "1h", "2h", "6h", "12h", "1d", "7d"]
assert set(BucketName.__args__) == set(BUCKETS)  # type: ignore[attr-defined]
MEDIA = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}


@router.get("/logs", response_model=LogPage)
def list_logs(
    repo: Repo,
    f: Filter,
    sort: Annotated[SortName, Query(description="time, or log (by log text, then time)")] = "time",
    order: Annotated[OrderName, Query()] = "desc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")
    ] = None,
) -> LogPage:
    """The Logs view: every filter combinable, keyset-paged."""
    position = None
    if cursor:
        try:
            position = Cursor.decode(cursor, sort, order)
        except InvalidCursorError as exc:
            raise BadParameterError("cursor", str(exc)) from None
    return repo.page(f, sort, order, limit, position)


@router.get("/logs/export")
def export_logs(
    repo: Repo,
    f: Filter,
    format_: Annotated[Literal["csv", "ndjson"], Query(alias="format")] = "csv",
) -> StreamingResponse:
    """Every matching row (no limit), newest first, as a download: the compliance export."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    filename = f"authtrail-logs-{stamp}.{format_}"
    # Starlette runs each next() of this generator on whichever threadpool worker is free
    # (iterate_in_threadpool), while other requests use the same threads: the export
    # borrows a store client per step and holds none between steps (see its docstring).
    chunks = repo.export(f, format_)
    # The first chunk is read before the answer starts: a store that is down is then a
    # 503 with Retry-After, not a 200 cut short after its headers.
    first = next(chunks, b"")
    return StreamingResponse(
        itertools.chain([first], chunks),
        media_type=MEDIA[format_],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/logs/timeline", response_model=Timeline)
def timeline(
    repo: Repo,
    f: Filter,
    bucket: Annotated[BucketName | None, Query(description="Default: from the range.")] = None,
) -> Timeline:
    """Success and failure counts per time bucket, for the chart."""
    return repo.timeline(f, bucket)


@router.get(
    "/logs/{event_id}",
    response_model=EventDetail,
    responses={404: {"description": "No such event (or not visible to this token)."}},
)
def get_log(
    repo: Repo,
    principal: Viewer,
    event_id: Annotated[str, Path(min_length=1, max_length=128)],
) -> EventDetail:
    """The whole normalized event."""
    event = repo.get(event_id, principal.account)
    if event is None:
        raise BadParameterError("event_id", "no such event", 404)
    return event


@router.get("/facets/{name}", response_model=Facet, tags=["facets"])
def facet(
    repo: Repo,
    principal: Viewer,
    f: FilterWithoutSearch,
    name: Literal["accounts", "users", "types"],
    q: Annotated[
        str | None, Query(max_length=256, description="Substring of value or label.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Facet:
    """Values of one filter dimension with their counts under the other filters ("All" is
    the absence of the filter). Here ``q`` narrows the values, it does not search logs."""
    own = f.without(name).scoped_to(principal.account)
    return repo.facet(name, own, q.strip() if q else None, limit)
