"""``POST /api/v1/events``: ingest over HTTPS for services that cannot speak Kafka.

Each event goes to the raw topic as a Kafka producer would send it (same partition key,
same contract; the normalizer decides validity and dead-letters what it refuses), and the
answer is sent once the brokers acknowledged every event (``acks=all``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from query_api.auth import EventProducer
from query_api.event_intake import IntakeError, check_account, decompress, parse_events
from query_api.event_writer import BrokerUnavailableError, EventWriter
from query_api.idempotency import (
    KEY_HEADER,
    IdempotencyError,
    IdempotencyLedger,
    body_digest,
    check_key,
)
from query_api.models import IngestAnswer

router = APIRouter(prefix="/api/v1", tags=["ingest"])

RETRY_AFTER_S = 5


def _refused(status: int, parameter: str, where: str, message: str) -> HTTPException:
    # A key in flight: the first request will have its answer in moments.
    headers = {"Retry-After": "1"} if status == 409 else None
    return HTTPException(
        status, detail={"parameter": parameter, "in": where, "message": message}, headers=headers
    )


def _unavailable(message: str) -> HTTPException:
    return HTTPException(
        503,
        detail={"parameter": "", "in": "broker", "message": message},
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


@router.post(
    "/events",
    status_code=202,
    response_model=IngestAnswer,
    responses={
        400: {"description": "Not JSON (the line is named), or no event."},
        403: {"description": "Not a producer token, or an event of another account."},
        409: {"description": "A request with this Idempotency-Key is still being answered."},
        413: {"description": "Body (or inflated body) over AUTHTRAIL_API_MAX_BODY_BYTES."},
        415: {"description": "Neither JSON nor NDJSON, or a Content-Encoding not gzip."},
        422: {"description": "The Idempotency-Key was used with a different body."},
        503: {"description": "The brokers did not acknowledge: retry after Retry-After."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "description": "An event of the raw contract "
                        "(schemas/jsonschema/raw-event-v1.schema.json), or an array of them.",
                        "oneOf": [
                            {"type": "object"},
                            {"type": "array", "items": {"type": "object"}},
                        ],
                    }
                },
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def post_events(
    request: Request,
    principal: EventProducer,
    content_type: Annotated[str | None, Header()] = None,
    content_encoding: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[str | None, Header(alias=KEY_HEADER)] = None,
) -> dict[str, Any]:
    """Writes auth events to the raw topic: a JSON object, a JSON array of objects, or
    NDJSON (``Content-Type: application/x-ndjson``), gzip accepted (``Content-Encoding:
    gzip``). Needs a ``producer`` token; one bound to an account writes only that account's
    events (403 naming the first other one; nothing is written then).

    Answered ``202`` once the brokers acknowledged every event, with each event's index and
    id: the one it carries, or the id the contract derives from its content, so a retried
    request maps to the same stored events. With ``Idempotency-Key`` the first answer is
    kept 24 hours and a retry gets it again without writing anything. ``503`` with
    ``Retry-After`` when the brokers did not acknowledge in time: retrying is safe."""
    writer: EventWriter | None = request.app.state.event_writer
    ledger: IdempotencyLedger | None = request.app.state.idempotency
    if writer is None or ledger is None:
        raise _unavailable("ingest over HTTP is not enabled in this process")
    key = None
    if idempotency_key is not None:
        try:
            key = check_key(idempotency_key)
        except IdempotencyError as exc:
            raise _refused(exc.status, KEY_HEADER, "header", exc.message) from None
    body = await request.body()
    try:
        events = parse_events(
            decompress(body, content_encoding, request.app.state.max_body_bytes), content_type
        )
        check_account(events, principal.account)
    except IntakeError as exc:
        raise _refused(exc.status, exc.parameter, exc.where, exc.message) from None
    answer = {
        "accepted": len(events),
        "results": [{"index": e.index, "event_id": e.event_id} for e in events],
    }
    if key is None:
        await _write(writer, events)
        return answer
    digest = body_digest(body)
    try:
        with ledger.claimed(principal.token_id, key):
            earlier = await run_in_threadpool(ledger.answer, principal.token_id, key, digest)
            if earlier is not None:
                return earlier
            await _write(writer, events)
            await run_in_threadpool(ledger.remember, principal.token_id, key, digest, answer)
    except IdempotencyError as exc:
        raise _refused(exc.status, KEY_HEADER, "header", exc.message) from None
    return answer


async def _write(writer: EventWriter, events: list[Any]) -> None:
    try:
        await writer.write(events)
    except BrokerUnavailableError as exc:
        raise _unavailable(f"the Kafka brokers did not acknowledge the events ({exc})") from None
