"""The FastAPI application: ``create_app(repository, tokens, signer)``.

Invalid parameters are answered 4xx with ``{"errors": [{"parameter", "in", "message"}]}``
naming each; a dependency that is down (the log store, the Kafka broker behind the tokens,
destinations and status topics) is a 503 with ``Retry-After``; nothing a client sends
produces a 500."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.exceptions import Error as ClickHouseClientError
from confluent_kafka import KafkaException
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from infra.kafka.compacted import ConfigTopicError
from infra.secrets import load_keyring
from query_api.auth import SessionSigner
from query_api.event_writer import EventWriter
from query_api.filters import BadParameterError
from query_api.idempotency import IdempotencyLedger
from query_api.limits import ApiLimits, BodySizeLimit, RateLimiter
from query_api.repository import LogRepository
from query_api.routes import destinations as destinations_routes
from query_api.routes import embed as embed_routes
from query_api.routes import erasures as erasures_routes
from query_api.routes import events as events_routes
from query_api.routes import logs, ops, session, web
from query_api.routes import notifications as notifications_routes
from query_api.routes import retention as retention_routes
from query_api.routes import views as views_routes
from query_api.routes.deps import StreamContext
from query_api.tokens import TokenLog
from schemas.log_store import StoreLocation, StoreUnavailableError
from schemas.settings import Settings

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
# How long a client is asked to wait when a dependency is down: about what a broker
# restart or a ClickHouse server failover takes.
RETRY_AFTER_S = 5


def _errors(
    status: int, errors: list[dict[str, str]], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(status_code=status, content={"errors": errors}, headers=headers)


def create_app(
    repository: LogRepository,
    tokens: TokenLog,
    signer: SessionSigner,
    ingest_status: Callable[[], dict[str, Any]] | None = None,
    stream: StreamContext | None = None,
    limits: ApiLimits | None = None,
    secure_cookies: bool = False,
    embed_origins: tuple[str, ...] = (),
    event_writer: EventWriter | None = None,
    apply_wait_s: float = 60.0,
) -> FastAPI:
    """The query API and the web page over ``repository``; callers authenticate with
    ``tokens``. ``ingest_status`` (when the API runs inside the ingest worker) adds the
    worker's counters to ``/healthz``; ``stream`` enables the Stream routes (503 without
    it); ``limits`` sets the request rate and body size (the defaults without it).
    ``secure_cookies`` marks the session cookie ``Secure`` whatever the request's scheme
    (the page is served over HTTPS: ``AUTHTRAIL_PUBLIC_URL`` is https); it is ``Secure``
    anyway when the request came over HTTPS, directly or from a trusted proxy.
    ``embed_origins``: who may frame the embeddable viewer (``/embed``).
    ``event_writer`` enables ingest over HTTP (``POST /api/v1/events``; 503 without it).
    ``apply_wait_s``: how long a retention change or an erasure waits for the ingest worker
    to apply it before answering 202."""
    limits = limits or ApiLimits()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if event_writer is not None:
            event_writer.close()
        repository.close()

    app = FastAPI(
        lifespan=lifespan,
        title="authtrail query API",
        version="1",
        description="Read the audit trail of identity and authentication events. Every "
        "/api route needs `Authorization: Bearer <token>` (or the page's session cookie).",
    )
    app.state.repository = repository
    app.state.tokens = tokens
    app.state.signer = signer
    app.state.ingest_status = ingest_status
    app.state.stream = stream
    app.state.secure_cookies = secure_cookies
    app.state.embed_origins = embed_origins
    app.state.rate_limiter = RateLimiter(limits.rate, limits.burst)
    app.state.max_body_bytes = limits.max_body_bytes
    app.state.event_writer = event_writer
    app.state.apply_wait_s = apply_wait_s
    app.state.idempotency = IdempotencyLedger(repository.location, repository.borrowed)
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for error in exc.errors():
            loc = [str(p) for p in error.get("loc", ())]
            # "filter.outcomes", not "0": list positions do not name a field.
            path = ".".join(p for p in loc[1:] if not p.isdigit())
            errors.append(
                {
                    "parameter": path or (loc[0] if loc else "request"),
                    "in": loc[0] if loc else "request",
                    "message": str(error.get("msg", "invalid")),
                }
            )
        return _errors(422, errors)

    @app.exception_handler(BadParameterError)
    async def on_bad_parameter(_request: Request, exc: BadParameterError) -> JSONResponse:
        return _errors(
            exc.status, [{"parameter": exc.parameter, "in": "query", "message": exc.message}]
        )

    @app.exception_handler(HTTPException)
    async def on_http(_request: Request, exc: HTTPException) -> JSONResponse:
        detail = (
            exc.detail
            if isinstance(exc.detail, dict)
            else {"parameter": "", "in": "request", "message": str(exc.detail)}
        )
        return _errors(exc.status_code, [detail], dict(exc.headers or {}))

    def unavailable(what: str, message: str) -> JSONResponse:
        return _errors(
            503,
            [{"parameter": "", "in": what, "message": message}],
            {"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.exception_handler(StoreUnavailableError)
    async def on_store_down(_request: Request, exc: StoreUnavailableError) -> JSONResponse:
        log.error("log store unavailable: %s", exc)
        return unavailable("store", "log store unavailable")

    @app.exception_handler(ClickHouseClientError)
    async def on_store_error(_request: Request, exc: ClickHouseClientError) -> JSONResponse:
        # The message may name the server's address: it goes to the log, not the client.
        if "TIMEOUT_EXCEEDED" in str(exc):
            limit = repository.query_timeout_s
            over = f"{limit:g} s" if limit is not None else "the time limit"
            # Not an outage: asking again the same way would fail the same way.
            message = f"the query ran over {over}: narrow the filter"
            return _errors(503, [{"parameter": "", "in": "store", "message": message}])
        log.error("log store query failed: %s", exc)
        return unavailable("store", "log store unavailable")

    @app.exception_handler(ConfigTopicError)
    @app.exception_handler(KafkaException)
    async def on_broker_down(_request: Request, exc: Exception) -> JSONResponse:
        # Tokens, destinations and their status live in Kafka topics: with the broker
        # gone, what is not already in memory cannot be read or written.
        log.error("Kafka broker unavailable: %s", exc)
        return unavailable("broker", "the Kafka broker is unavailable: try again shortly")

    app.include_router(logs.router)
    app.include_router(events_routes.router)
    app.include_router(destinations_routes.router)
    app.include_router(notifications_routes.router)
    app.include_router(views_routes.router)
    app.include_router(retention_routes.router)
    app.include_router(erasures_routes.router)
    app.include_router(embed_routes.router)
    app.include_router(session.router)
    app.include_router(ops.router)
    app.include_router(web.router)
    web.mount_static(app, STATIC_DIR)
    return app


def app_for(
    settings: Settings,
    location: StoreLocation,
    ingest_status: Callable[[], dict[str, Any]] | None = None,
) -> FastAPI:
    """The API as every process that serves it runs it (``authtrail api``, and inside
    ``authtrail up``'s worker): the log store at ``location`` (migrated), the tokens and
    destinations followed from their topics, the installation's key, ``AUTHTRAIL_API_*``
    limits. The tokens and Stream views are stopped by ``ApiService`` or at shutdown."""
    return create_app(
        LogRepository(location, query_timeout_s=settings.api_query_timeout_seconds),
        TokenLog(settings).start(),
        SessionSigner(load_keyring(settings)),
        ingest_status=ingest_status,
        stream=StreamContext.open(settings),
        limits=ApiLimits.of(settings),
        secure_cookies=settings.api_url.startswith("https://"),
        embed_origins=settings.embed_origins,
        event_writer=EventWriter(settings),
    )
