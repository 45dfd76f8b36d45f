"""``/healthz``: liveness and readiness, no authentication (for probes)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from query_api.models import Health
from query_api.routes.deps import Repo

router = APIRouter(tags=["ops"])


@router.get("/livez")
def livez() -> dict[str, str]:
    """200 while the process answers: the liveness probe. A log store outage is not a
    reason to restart the API (``/healthz`` reports it, for readiness)."""
    return {"status": "ok"}


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(request: Request, repo: Repo) -> JSONResponse | Health:
    """200 when the log store answers, with the ingest worker's counters when the API runs
    inside it (``ingest``: received, stored, dead_lettered and, of those dead-lettered,
    older_than_retention: events refused because the log store's retention would delete
    them at once) and the destinations a connector reports ``stalled`` (``stalled``); 503
    when the log store does not answer. A stalled destination does not make it 503: the
    connector replaces the consumer itself, and the API serves all the same."""
    status = request.app.state.ingest_status
    ingest = status() if status else None
    stream = request.app.state.stream
    stalled = stream.board.stalled(time.time()) if stream is not None else None
    try:
        version = repo.schema_version()
    except Exception as exc:
        health = Health(
            status="degraded",
            store=repo.location.safe_url,
            schema_version=None,
            ingest=ingest,
            stalled=stalled,
            error=f"log store: {type(exc).__name__}",
        )
        return JSONResponse(status_code=503, content=health.model_dump(mode="json"))
    return Health(
        status="ok",
        store=repo.location.safe_url,
        schema_version=version,
        ingest=ingest,
        stalled=stalled,
    )
