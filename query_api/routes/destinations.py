"""``/api/v1/destination-types`` and ``/api/v1/destinations``: the Stream tab's API.

Reading (types, destinations, status) takes any token; every change takes an admin token.
Destinations are validated per platform; an invalid one is a 422 naming the setting
(``settings.api_key``, ``filter.outcomes``). Secrets are write-only: replies show that one
is set and its last 4 characters. Changes are written to the ``authtrail.destinations``
topic, which every connector process follows: they take effect within seconds."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Path, Query, Response
from fastapi.concurrency import run_in_threadpool

from connectors.admin.dead_letters import RedriveError, page, redrive
from connectors.admin.replay import ReplayError, replay
from connectors.admin.sample_event import send_test_event
from connectors.config import DestinationStore
from infra.kafka.dead_letters import DeadLetter
from query_api.auth import Admin, EveryAccountViewer, Viewer
from query_api.models import (
    DeadLetterItem,
    DeadLetterPage,
    DestinationCreate,
    DestinationFilterBody,
    DestinationOut,
    DestinationPatch,
    DestinationStatus,
    DestinationType,
    RedriveReply,
    ReplayBody,
    ReplayReply,
    SecretRotation,
    TestEventReply,
)
from query_api.routes.deps import AppSettings, Board, BrokerUp, Store
from schemas import topics
from schemas.destinations import (
    Destination,
    DestinationError,
    make_destination,
    new_id,
    rotated_secret,
    updated_destination,
)
from schemas.events import utc_now_ms
from schemas.platforms import PLATFORM_SPECS, SETTINGS_MODELS
from schemas.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["stream"])

DestinationId = Annotated[str, Path(pattern=r"^[a-z0-9]{10}$", description="Destination id.")]


def _invalid(exc: DestinationError) -> HTTPException:
    # The messages are the validators' own and never carry a secret's value.
    return HTTPException(422, {"parameter": exc.field, "in": "body", "message": exc.message})


def _not_found(destination_id: str) -> HTTPException:
    return HTTPException(
        404, {"parameter": "id", "in": "path", "message": f"no destination {destination_id}"}
    )


def _values(
    settings: dict[str, Any],
    filter_: DestinationFilterBody | None,
    transform: dict[str, str] | None = None,
    suspend_after: int | str | None = None,
) -> dict[str, Any]:
    values = {
        key: value
        for key, value in settings.items()
        if not key.startswith(("filter.", "transform."))
    }
    if filter_ is not None:
        values.update({f"filter.{key}": items for key, items in filter_.model_dump().items()})
    if transform is not None:
        values.update({f"transform.{field}": action for field, action in transform.items()})
    if suspend_after is not None:
        values["suspend_after"] = suspend_after
    return values


def _out(
    destination: Destination, settings: Settings, generated: dict[str, str] | None = None
) -> DestinationOut:
    return DestinationOut(
        id=destination.id,
        name=destination.name,
        platform=destination.platform,
        settings=destination.redacted_settings(),
        filter=DestinationFilterBody.model_validate(destination.filter.model_dump()),
        transform=dict(destination.transform),
        paused=destination.paused,
        suspend_after=destination.suspend_after_s,
        suspended_at=destination.suspended_at,
        consumer_group=destination.group_id,
        dead_letter_topic=settings.topics.destination_dlq(destination.id),
        created_at=destination.created_at,
        updated_at=destination.updated_at,
        generated_secrets=generated or None,
    )


def _find(store: DestinationStore, destination_id: str) -> Destination:
    destination = store.get(destination_id)
    if destination is None and store.catch_up(3.0):
        destination = store.get(destination_id)
    if destination is None:
        raise _not_found(destination_id)
    return destination


@router.get("/destination-types", response_model=list[DestinationType])
def destination_types(_viewer: Viewer) -> list[DestinationType]:
    """The platforms, with the JSON Schema of each one's settings."""
    types = []
    for spec in PLATFORM_SPECS.values():
        model = spec.settings
        schema = model.model_json_schema()
        for secret in model.SECRETS:
            schema["properties"][secret]["writeOnly"] = True
        for hidden in model.HIDDEN:  # set by operations (a rotation), not by the form
            del schema["properties"][hidden]
        types.append(
            DestinationType(
                platform=spec.platform,
                name=spec.name,
                description=spec.description,
                icon=f"/static/platforms/{spec.platform}.svg",
                secrets=[key for key in model.SECRETS if key not in model.HIDDEN],
                generated=list(model.GENERATED),
                address=list(model.ADDRESS),
                settings_schema=schema,
            )
        )
    return types


@router.post("/destination-types/{platform}/test", response_model=TestEventReply)
async def test_unsaved(platform: str, body: DestinationCreate, _admin: Admin) -> TestEventReply:
    """Sends one sample event with settings not saved yet; the platform's reply."""
    if body.platform != platform:
        raise HTTPException(
            422, {"parameter": "platform", "in": "body", "message": "differs from the path"}
        )
    try:
        destination = make_destination(
            platform, body.name, _values(body.settings, body.filter, body.transform), new_id()
        )
    except DestinationError as exc:
        raise _invalid(exc) from None
    reply = await run_in_threadpool(send_test_event, destination)
    return TestEventReply.model_validate(reply, from_attributes=True)


@router.get("/destinations", response_model=list[DestinationOut])
def list_destinations(
    _viewer: EveryAccountViewer, store: Store, settings: AppSettings
) -> list[DestinationOut]:
    """Every destination, oldest first."""
    return [_out(d, settings) for d in store.all()]


@router.post("/destinations", response_model=DestinationOut, status_code=201)
def create_destination(
    body: DestinationCreate,
    _admin: Admin,
    _broker: BrokerUp,
    store: Store,
    settings: AppSettings,
) -> DestinationOut:
    """Validates and stores a destination; connectors start delivering to it at once
    (from the oldest retained event) unless it is created paused. A secret authtrail
    makes (a webhook's signing secret, when none is given) is in ``generated_secrets``
    of this reply only."""
    try:
        destination = store.add(
            body.platform,
            body.name,
            _values(body.settings, body.filter, body.transform, body.suspend_after),
            paused=body.paused,
        )
    except DestinationError as exc:
        raise _invalid(exc) from None
    return _out(destination, settings, destination.generated_secrets(body.settings))


@router.get("/destinations/{destination_id}", response_model=DestinationOut)
def get_destination(
    destination_id: DestinationId, _viewer: EveryAccountViewer, store: Store, settings: AppSettings
) -> DestinationOut:
    return _out(_find(store, destination_id), settings)


@router.patch("/destinations/{destination_id}", response_model=DestinationOut)
def patch_destination(
    destination_id: DestinationId,
    body: DestinationPatch,
    _admin: Admin,
    _broker: BrokerUp,
    store: Store,
    settings: AppSettings,
) -> DestinationOut:
    """Changes name, settings or filter; validated as a whole. A change of where requests
    go (the type's ``address`` settings) needs every secret again: 422 naming it."""
    current = _find(store, destination_id)
    secrets = SETTINGS_MODELS[current.platform].SECRETS
    changes = {k: v for k, v in body.settings.items() if not (k in secrets and v is None)}
    if body.transform is not None:  # the whole set: rules left out are removed
        changes.update({f"transform.{field}": None for field in current.transform})
    try:
        updated = updated_destination(
            current,
            body.name,
            _values(changes, body.filter, body.transform, body.suspend_after),
        )
    except DestinationError as exc:
        raise _invalid(exc) from None
    store.replace(updated)
    return _out(updated, settings)


@router.delete("/destinations/{destination_id}", status_code=204)
def delete_destination(
    destination_id: DestinationId, _admin: Admin, _broker: BrokerUp, store: Store
) -> Response:
    """Removes it; its consumer group and dead letters stay in Kafka."""
    _find(store, destination_id)
    store.remove(destination_id)
    return Response(status_code=204)


@router.post("/destinations/{destination_id}/pause", response_model=DestinationOut)
def pause_destination(
    destination_id: DestinationId,
    _admin: Admin,
    _broker: BrokerUp,
    store: Store,
    settings: AppSettings,
) -> DestinationOut:
    """Stops delivery; the destination falls behind and later resumes where it stopped."""
    return _paused(store, destination_id, True, settings)


@router.post("/destinations/{destination_id}/resume", response_model=DestinationOut)
def resume_destination(
    destination_id: DestinationId,
    _admin: Admin,
    _broker: BrokerUp,
    store: Store,
    settings: AppSettings,
) -> DestinationOut:
    """Delivery goes on from where it stopped; a suspended destination is resumed too."""
    return _paused(store, destination_id, False, settings)


@router.post("/destinations/{destination_id}/rotate-secret", response_model=DestinationOut)
def rotate_secret(
    destination_id: DestinationId,
    body: SecretRotation,
    _admin: Admin,
    _broker: BrokerUp,
    store: Store,
    settings: AppSettings,
) -> DestinationOut:
    """A webhook's new signing secret (in ``generated_secrets``, this once). Requests are
    signed with both for ``grace_seconds``: receivers switch to the new one meanwhile."""
    current = _find(store, destination_id)
    try:
        rotated, fresh = rotated_secret(
            current, utc_now_ms().timestamp(), body.grace_seconds, body.secret
        )
    except DestinationError as exc:
        raise _invalid(exc) from None
    store.replace(rotated)
    return _out(rotated, settings, {"secret": fresh})


def _paused(
    store: DestinationStore, destination_id: str, paused: bool, settings: Settings
) -> DestinationOut:
    _find(store, destination_id)  # 404 for an unknown id
    return _out(store.set_paused(destination_id, paused), settings)


@router.post("/destinations/{destination_id}/test", response_model=TestEventReply)
async def test_destination(
    destination_id: DestinationId, _admin: Admin, store: Store
) -> TestEventReply:
    """Sends one sample event now (not through Kafka); the platform's reply."""
    destination = _find(store, destination_id)
    reply = await run_in_threadpool(send_test_event, destination)
    return TestEventReply.model_validate(reply, from_attributes=True)


@router.get("/destinations/{destination_id}/status", response_model=DestinationStatus)
def destination_status(
    destination_id: DestinationId,
    _viewer: EveryAccountViewer,
    _broker: BrokerUp,
    store: Store,
    board: Board,
) -> DestinationStatus:
    """State, lag (from Kafka: committed offsets against high watermarks), counters summed
    over the connector replicas, events/s, last success and last error."""
    destination = _find(store, destination_id)
    return DestinationStatus.model_validate(board.summary(destination))


@router.post("/destinations/{destination_id}/replay", response_model=ReplayReply)
async def replay_destination(
    destination_id: DestinationId,
    body: ReplayBody,
    _admin: Admin,
    _broker: BrokerUp,
    store: Store,
    settings: AppSettings,
) -> ReplayReply:
    """Delivers everything from ``from`` on again: the destination's consumer group is moved
    to that time (the destination pauses for the moment it takes)."""
    destination = _find(store, destination_id)
    try:
        result = await run_in_threadpool(replay, settings, store, destination, body.since)
    except ReplayError as exc:
        raise HTTPException(409, {"parameter": "", "in": "stream", "message": str(exc)}) from None
    return ReplayReply(offsets=result.offsets, events=result.events)


def _decode_cursor(cursor: str | None) -> dict[int, int]:
    if not cursor:
        return {}
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return {int(p): int(o) for p, o in data.items()}
    except (ValueError, TypeError, AttributeError, binascii.Error):
        raise HTTPException(
            400, {"parameter": "cursor", "in": "query", "message": "not a cursor of this list"}
        ) from None


def _encode_cursor(starts: dict[int, int] | None) -> str | None:
    if starts is None:
        return None
    return base64.urlsafe_b64encode(orjson.dumps({str(p): o for p, o in starts.items()})).decode()


def _letter(letter: DeadLetter) -> DeadLetterItem:
    try:
        event: Any = orjson.loads(letter.value)
    except orjson.JSONDecodeError:
        event = letter.value.decode(errors="replace")
    headers = letter.headers
    return DeadLetterItem(
        event=event,
        reason=letter.reason,
        platform_status=headers.get(topics.DLQ_PLATFORM_STATUS_HEADER, ""),
        platform_code=headers.get(topics.DLQ_PLATFORM_CODE_HEADER, ""),
        platform_reply=headers.get(topics.DLQ_PLATFORM_REPLY_HEADER, ""),
        dead_lettered_at=letter.dead_lettered_at,
        source=letter.source,
        partition=letter.partition,
        offset=letter.offset,
    )


@router.get("/destinations/{destination_id}/dead-letters", response_model=DeadLetterPage)
def dead_letters(
    destination_id: DestinationId,
    _viewer: EveryAccountViewer,
    _broker: BrokerUp,
    store: Store,
    settings: AppSettings,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeadLetterPage:
    """The destination's dead letters, oldest first per partition, a page at a time."""
    _find(store, destination_id)
    letters, following = page(settings, destination_id, _decode_cursor(cursor), limit)
    return DeadLetterPage(
        items=[_letter(letter) for letter in letters], next_cursor=_encode_cursor(following)
    )


@router.post("/destinations/{destination_id}/dead-letters/redrive", response_model=RedriveReply)
async def redrive_dead_letters(
    destination_id: DestinationId,
    _admin: Admin,
    _broker: BrokerUp,
    store: Store,
    settings: AppSettings,
) -> RedriveReply:
    """Re-sends the dead letters not redriven before: what the platform takes now is
    delivered; what it refuses again is dead-lettered again with the new reply."""
    destination = _find(store, destination_id)
    try:
        result = await run_in_threadpool(redrive, settings, destination)
    except RedriveError as exc:
        raise HTTPException(409, {"parameter": "", "in": "stream", "message": str(exc)}) from None
    return RedriveReply(
        redriven=result.redriven,
        delivered=result.delivered,
        dead_lettered_again=result.dead_lettered_again,
        remaining=result.remaining,
    )
