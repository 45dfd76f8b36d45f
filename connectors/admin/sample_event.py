"""Sending one sample event to a destination now ("Send test event" of the Stream tab).

Contract of ``send_test_event(destination, timeout_s)``: builds the destination's sink,
sends one sample normalized event (``event_key`` ``authtrail.test``) in one request, and
returns the platform's classified reply. It never raises for a platform or network
failure, never retries, and returns within ``timeout_s`` (a request still running then is
left to finish in the background and reported as ``timeout``). Nothing is committed or
dead-lettered: the sample is not on any topic."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

from connectors.sinks import build_sink
from connectors.sinks.base import SendResult, encode_event
from schemas.destinations import Destination
from schemas.events import NormalizedEvent, utc_now_ms

TEST_EVENT_KEY = "authtrail.test"


@dataclass(frozen=True, slots=True)
class SampleReply:
    """What the platform answered to the sample event (never a secret)."""

    ok: bool
    result: str  # ok | retry | too_large | invalid | auth | partial | timeout | error
    status: int | None
    code: str
    message: str
    event_id: str


def sample_event(destination: Destination) -> NormalizedEvent:
    now = utc_now_ms()
    return NormalizedEvent(
        event_id=f"test-{uuid.uuid4()}",
        event_key=TEST_EVENT_KEY,
        description="authtrail test event",
        outcome="success",
        occurred_at=now,
        received_at=now,
        actor_type="service",
        actor_id="authtrail",
        actor_display="authtrail",
        attributes={"destination_id": destination.id, "destination_name": destination.name},
    )


def send_test_event(destination: Destination, timeout_s: float = 15.0) -> SampleReply:
    """See the module docstring."""
    event = sample_event(destination)
    outcome: list[SendResult | Exception] = []

    def send() -> None:
        try:
            sink = build_sink(destination)
            try:
                entry = encode_event(sink, event.to_dict())
                outcome.append(sink.send([entry]))
            finally:
                sink.close()
        except Exception as exc:  # reported, never raised: the caller shows it
            outcome.append(exc)

    # A daemon thread, not an executor: a platform that never answers must not hold up
    # the process's exit.
    thread = threading.Thread(target=send, name=f"test-{destination.id}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if not outcome:
        message = f"no reply within {timeout_s:.0f} s"
        return SampleReply(False, "timeout", None, "timeout", message, event.event_id)
    result = outcome[0]
    if isinstance(result, Exception):
        return SampleReply(False, "error", None, type(result).__name__, "", event.event_id)
    reply = result.reply
    return SampleReply(
        result.kind == "ok", result.kind, reply.status, reply.code, reply.message, event.event_id
    )
