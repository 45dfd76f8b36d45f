"""EventBridge's retry logic: what a PutEvents answer, or a failed call, means for the
batch (Vector's ``RetryLogic``)."""

from __future__ import annotations

from typing import Any, Literal

from connectors.sinks import aws
from connectors.sinks.base import Reply, SendResult

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

EntryState = Literal["ok", "retry", "invalid"]


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
    if len(codes) == sent and all(is_auth_code(code) for code in codes):
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
    reply = aws.client_error(exc)
    if reply is None:
        return aws.classify_transport(exc, "EventBridge")
    status, code = reply.status, reply.code
    if code == BUS_MISSING:
        return SendResult(
            "auth",
            Reply(
                status,
                code,
                f"event bus {bus} does not exist ({reply.message}); create it or fix the "
                "destination's event_bus: nothing is sent until then",
            ),
        )
    if code in AUTH_CODES or is_auth_code(code) or status in (401, 403):
        return SendResult("auth", reply)
    if code in RETRY_CODES or status == 429 or (status is not None and status >= 500):
        return SendResult("retry", reply)
    if status == 413 or "total size" in reply.message.lower():
        return SendResult("too_large", reply)
    return SendResult("invalid", reply)


def is_auth_code(code: str) -> bool:
    return code.startswith(("AccessDenied", "NotAuthorized"))
