"""The FastAPI application: ``create_app(repository)``.

Invalid parameters are answered 422 with a body naming each parameter and why; the
handler never lets a store error surface as an unexplained 500."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from query_api.cursor import Cursor, InvalidCursorError
from query_api.models import Health, LogPage
from query_api.repository import LogRepository
from schemas.clickhouse import StoreUnavailableError

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


class BadParameterError(Exception):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


def get_repository(request: Request) -> LogRepository:
    """The app's log repository (a dependency; tests may override it)."""
    repository: LogRepository = request.app.state.repository
    return repository


Repo = Annotated[LogRepository, Depends(get_repository)]


def _error(status: int, errors: list[dict[str, str]]) -> JSONResponse:
    return JSONResponse(status_code=status, content={"errors": errors})


def create_app(
    repository: LogRepository,
    ingest_status: Callable[[], dict[str, Any]] | None = None,
) -> FastAPI:
    """The query API over ``repository``. ``ingest_status`` (when the API runs inside the
    ingest worker) adds the worker's counters to ``/healthz``."""
    app = FastAPI(
        title="authtrail query API",
        version="1",
        description="Read the audit trail of identity and authentication events.",
    )

    app.state.repository = repository

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "parameter": str(error["loc"][-1]) if error.get("loc") else "request",
                "in": str(error["loc"][0]) if error.get("loc") else "request",
                "message": str(error.get("msg", "invalid")),
            }
            for error in exc.errors()
        ]
        return _error(422, errors)

    @app.exception_handler(BadParameterError)
    async def on_bad_parameter(_request: Request, exc: BadParameterError) -> JSONResponse:
        return _error(400, [{"parameter": exc.parameter, "in": "query", "message": exc.message}])

    @app.exception_handler(StoreUnavailableError)
    async def on_store_down(_request: Request, exc: StoreUnavailableError) -> JSONResponse:
        log.error("log store unavailable: %s", exc)
        return _error(503, [{"parameter": "", "in": "store", "message": "log store unavailable"}])

    @app.get(f"{API_PREFIX}/logs", response_model=LogPage, tags=["logs"])
    def list_logs(
        repo: Repo,
        limit: Annotated[int, Query(ge=1, le=500, description="Rows per page.")] = 50,
        cursor: Annotated[
            str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
        ] = None,
    ) -> LogPage:
        """The Logs view, newest first."""
        position = None
        if cursor:
            try:
                position = Cursor.decode(cursor)
            except InvalidCursorError as exc:
                raise BadParameterError("cursor", str(exc)) from None
        return repo.latest(limit, position)

    @app.get("/healthz", response_model=Health, tags=["ops"])
    def healthz(repo: Repo) -> JSONResponse | Health:
        """Liveness and readiness: the log store answers, and the ingest counters."""
        ingest = ingest_status() if ingest_status else None
        try:
            version = repo.schema_version()
        except Exception as exc:
            health = Health(
                status="degraded",
                store=repo.location.safe_url,
                schema_version=None,
                ingest=ingest,
                error=f"log store: {type(exc).__name__}",
            )
            return JSONResponse(status_code=503, content=health.model_dump(mode="json"))
        return Health(
            status="ok", store=repo.location.safe_url, schema_version=version, ingest=ingest
        )

    return app
