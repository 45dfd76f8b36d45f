"""Amazon EventBridge — PutEvents.

Each event becomes one PutEvents entry: ``Source`` = the configured source (authtrail),
``DetailType`` = the log text (``description``; the event key when that is empty; cut to
AWS's 128 characters), ``Detail`` = the whole normalized event as JSON text,
``EventBusName`` = the configured bus (name or ARN), ``Time`` = when it happened (left out
when unknown: AWS then uses the time of the call) and ``Resources`` = ``[]``.

Requests: one PutEvents call of at most 10 entries through boto3 (SigV4 with the configured
keys, or the default AWS credential chain when none are set; botocore's own retries are off:
``Delivery`` retries). Sizes follow AWS's rule — ``Time`` counts 14 bytes, ``Source``,
``DetailType``, ``Detail`` and each of ``Resources`` their UTF-8 bytes: an encoded entry is
never shorter than its AWS size, so ``Delivery``'s per-entry check (256,000 bytes)
dead-letters what AWS would refuse; a call whose entries total more than that (AWS's limit
is on the whole request too) answers ``too_large`` without being sent, and is split.

Replies: HTTP 200 with ``FailedEntryCount`` 0 is ``ok``; with failures it is ``partial``:
entries failed with InternalFailure or ThrottlingException are re-sent, any other
``ErrorCode`` (MalformedDetail, InvalidArgument, ...) is dead-lettered with its code and
message — except when every entry of the call was refused for authorization
(AccessDenied*, NotAuthorizedFor*): that is the destination's permissions, so ``auth``.
Whole-call errors: throttling, internal failures, 5xx and transport failures are ``retry``;
refused, expired or missing credentials are ``auth``; a missing bus
(ResourceNotFoundException) is ``auth`` as well — a configuration error every event would
hit, so the destination waits, re-checked slowly, until the bus exists; a request over the
size limit is ``too_large``; other validation errors are ``invalid``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import boto3  # type: ignore[import-untyped]
import orjson
from botocore import exceptions as aws_errors  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]

from connectors.sinks.base import (
    EventHead,
    Limits,
    Reply,
    SendResult,
    StopCheck,
    embed,
    json_string,
    never,
)
from schemas.destinations import Destination, EventBridgeSettings
from schemas.events import rfc3339_ms

MAX_ENTRIES = 10
MAX_ENTRY_BYTES = 256_000  # AWS says 256 KB (by its size rule); a little under 262,144
MAX_REQUEST_BYTES = 256_000  # the same limit holds for the entries of one call together
MAX_DETAIL_TYPE_CHARS = 128
TIME_BYTES = 14  # what AWS counts for a Time, whatever its text

RETRY_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "InternalFailure",
        "InternalException",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidClientTokenId",
        "MissingAuthenticationToken",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
ENTRY_RETRY_CODES = frozenset({"InternalFailure", "ThrottlingException"})
BUS_MISSING = "ResourceNotFoundException"

_CREDENTIAL_ERRORS = (
    aws_errors.NoCredentialsError,
    aws_errors.PartialCredentialsError,
    aws_errors.CredentialRetrievalError,
)

EntryState = Literal["ok", "retry", "invalid"]


class EventBridgeSink:
    platform = "eventbridge"
    limits = Limits(
        max_entries=MAX_ENTRIES,
        max_bytes=MAX_ENTRIES * MAX_ENTRY_BYTES,
        max_entry_bytes=MAX_ENTRY_BYTES,
        gzip=False,
    )

    def __init__(self, destination: Destination) -> None:
        settings = destination.settings
        assert isinstance(settings, EventBridgeSettings)
        self._settings = settings
        self._client: Any = _make_client(settings)

    # -- encoder ------------------------------------------------------------------------------
    def encode(self, head: EventHead, raw: bytes) -> bytes:
        entry: dict[str, Any] = {
            "Source": self._settings.source,
            "DetailType": _detail_type(head),
            "EventBusName": self._settings.event_bus,
            "Resources": [],
        }
        moment = head.occurred_utc()
        if moment is not None:
            entry["Time"] = rfc3339_ms(moment)
        body = embed(entry, "Detail", json_string(raw))
        size = aws_entry_size(entry) + len(raw)  # Detail: the event's UTF-8 bytes
        if len(body) < size:
            # Never the case with this encoding (Detail's escaping only adds bytes); kept so
            # Delivery's per-entry check can never pass an entry AWS counts as larger.
            body += b" " * (size - len(body))
        return body

    # -- service ------------------------------------------------------------------------------
    def send(self, entries: Sequence[bytes], should_stop: StopCheck = never) -> SendResult:
        states: dict[int, EntryState] = {}
        replies: dict[int, Reply] = {}
        request: list[dict[str, Any]] = []
        positions: list[int] = []
        total = 0
        for position, body in enumerate(entries):
            entry = _decode(body)
            if entry is None:
                states[position] = "invalid"
                replies[position] = Reply(None, "undecodable", "not a PutEvents entry")
                continue
            total += aws_entry_size(entry)
            request.append(_to_boto(entry))
            positions.append(position)
        if total > MAX_REQUEST_BYTES and len(request) > 1:
            return SendResult(
                "too_large",
                Reply(
                    None,
                    "too_large",
                    f"entries total {total} bytes by AWS's size rule; "
                    f"one PutEvents call takes at most {MAX_REQUEST_BYTES}",
                ),
            )
        if not request:
            return _partial(states, replies, len(entries), None)
        try:
            response = self._client.put_events(Entries=request)
        except (aws_errors.ClientError, aws_errors.BotoCoreError) as exc:
            return classify_error(exc, self._settings.event_bus)
        outcome = classify_response(response, len(request))
        if not states:
            return outcome
        # Some entries never left: merge what AWS said about the others.
        if outcome.kind not in ("ok", "partial"):
            return outcome
        for index, position in enumerate(positions):
            states[position] = outcome.entries.get(index, "ok")
            if index in outcome.entry_replies:
                replies[position] = outcome.entry_replies[index]
        return _partial(states, replies, len(entries), 200)

    def healthcheck(self) -> SendResult:
        try:
            self._client.describe_event_bus(Name=self._settings.event_bus)
        except (aws_errors.ClientError, aws_errors.BotoCoreError) as exc:
            return classify_error(exc, self._settings.event_bus)
        return SendResult("ok", Reply(200, "", f"event bus {self._settings.event_bus} exists"))

    def close(self) -> None:
        self._client.close()


# -- client ------------------------------------------------------------------------------------
def _make_client(settings: EventBridgeSettings) -> Any:
    """A boto3 ``events`` client on its own session (sessions are not shared between
    threads): explicit keys when configured, else the default credential chain."""
    session = boto3.session.Session(
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=(
            settings.secret_access_key.get_secret_value()
            if settings.secret_access_key is not None
            else None
        ),
        region_name=settings.region,
    )
    config = Config(
        connect_timeout=5,
        read_timeout=30,
        # One attempt: Delivery retries. (``max_attempts`` counts retries: 1 would be two.)
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=8,
        user_agent_extra="authtrail-connector/1",
    )
    return session.client("events", endpoint_url=settings.endpoint, config=config)


# -- encoding ----------------------------------------------------------------------------------
def aws_entry_size(entry: dict[str, Any]) -> int:
    """An entry's size by AWS's rule: Time 14 bytes when set; the UTF-8 bytes of Source,
    DetailType, Detail and each of Resources."""
    size = TIME_BYTES if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        value = entry.get(key)
        if isinstance(value, str):
            size += len(value.encode())
    for resource in entry.get("Resources") or ():
        if isinstance(resource, str):
            size += len(resource.encode())
    return size


def _detail_type(head: EventHead) -> str:
    text = head.description.strip() or head.event_key
    return (text or "authtrail event")[:MAX_DETAIL_TYPE_CHARS]


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _decode(body: bytes) -> dict[str, Any] | None:
    try:
        entry = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("Detail"), str):
        return None
    return entry


def _to_boto(entry: dict[str, Any]) -> dict[str, Any]:
    request = {k: v for k, v in entry.items() if k != "Time"}
    moment = _parse_time(entry.get("Time"))
    if moment is not None:
        request["Time"] = moment
    return request


# -- replies -----------------------------------------------------------------------------------
def classify_response(response: dict[str, Any], sent: int) -> SendResult:
    """A PutEvents answer (HTTP 200): ``ok``, or ``partial`` with each entry's state."""
    failed = int(response.get("FailedEntryCount") or 0)
    answers = response.get("Entries") or []
    if failed == 0 and len(answers) >= sent:
        return SendResult("ok", Reply(200, "", f"{sent} entries accepted"))
    states: dict[int, EntryState] = {}
    replies: dict[int, Reply] = {}
    for index in range(sent):
        answer = answers[index] if index < len(answers) else None
        if answer is None:
            # AWS answers every entry in order; a missing answer is not a refusal.
            states[index] = "retry"
            replies[index] = Reply(200, "NoAnswer", "PutEvents gave no result for this entry")
            continue
        code = str(answer.get("ErrorCode") or "")
        if not code:
            states[index] = "ok"
            continue
        states[index] = "retry" if code in ENTRY_RETRY_CODES else "invalid"
        replies[index] = Reply(200, code, str(answer.get("ErrorMessage") or ""))
    codes = [reply.code for reply in replies.values()]
    if len(codes) == sent and all(_is_auth_code(code) for code in codes):
        first = next(iter(replies.values()))
        return SendResult(
            "auth",
            Reply(
                200,
                first.code,
                f"every entry refused for authorization ({first.message}); "
                "fix the credentials' permissions on the bus",
            ),
        )
    return SendResult(
        "partial",
        Reply(200, "", f"{len(codes)} of {sent} entries failed"),
        entries=states,
        entry_replies=replies,
    )


def classify_error(exc: Exception, bus: str = "") -> SendResult:
    """A whole call that failed (botocore ``ClientError`` or ``BotoCoreError``)."""
    if isinstance(exc, aws_errors.ClientError):
        error = exc.response.get("Error") or {}
        code = str(error.get("Code") or "")
        message = str(error.get("Message") or "")
        status_value = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        status = int(status_value) if status_value is not None else None
        reply = Reply(status, code, message)
        if code == BUS_MISSING:
            return SendResult(
                "auth",
                Reply(
                    status,
                    code,
                    f"event bus {bus} does not exist ({message}); create it or fix the "
                    "destination's event_bus: nothing is sent until then",
                ),
            )
        if code in AUTH_CODES or _is_auth_code(code) or status in (401, 403):
            return SendResult("auth", reply)
        if code in RETRY_CODES or status == 429 or (status is not None and status >= 500):
            return SendResult("retry", reply)
        if status == 413 or "total size" in message.lower():
            return SendResult("too_large", reply)
        return SendResult("invalid", reply)
    name = type(exc).__name__
    if isinstance(exc, aws_errors.ReadTimeoutError):
        return SendResult("retry", Reply(None, "timeout", "EventBridge did not answer in time"))
    if isinstance(exc, aws_errors.ConnectionError | aws_errors.HTTPClientError):
        return SendResult("retry", Reply(None, "connection", f"{name}: {exc}"))
    if isinstance(exc, _CREDENTIAL_ERRORS):
        return SendResult("auth", Reply(None, "credentials", f"{name}: {exc}"))
    if isinstance(exc, aws_errors.ParamValidationError):
        return SendResult("invalid", Reply(None, "ParamValidation", str(exc)))
    return SendResult("retry", Reply(None, name, str(exc)))


def _is_auth_code(code: str) -> bool:
    return code.startswith(("AccessDenied", "NotAuthorized"))


def _partial(
    states: dict[int, EntryState], replies: dict[int, Reply], count: int, status: int | None
) -> SendResult:
    failed = sum(1 for state in states.values() if state != "ok")
    return SendResult(
        "partial",
        Reply(status, "", f"{failed} of {count} entries failed"),
        entries=states,
        entry_replies=replies,
    )


# The sink of the platform registered as "eventbridge" (connectors.sinks.build_sink).
SINK = EventBridgeSink
