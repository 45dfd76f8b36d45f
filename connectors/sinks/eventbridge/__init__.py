"""Amazon EventBridge — PutEvents.

Each event becomes one PutEvents entry: ``Source`` = the configured source (authtrail),
``DetailType`` = the log text (``description``; the event key when that is empty; cut to
AWS's 128 characters), ``Detail`` = the whole normalized event as JSON text,
``EventBusName`` = the configured bus (name or ARN), ``Time`` = when it happened (left out
when unknown: AWS then uses the time of the call) and ``Resources`` = ``[]``.

Requests: one PutEvents call of at most 10 entries through boto3 (SigV4 with the configured
keys, or the default AWS credential chain when none are set; botocore's own retries are off:
``Delivery`` retries). An entry is the request entry itself with its size by AWS's rule —
``Time`` counts 14 bytes, ``Source``, ``DetailType``, ``Detail`` and each of ``Resources``
their UTF-8 bytes — so ``Delivery`` dead-letters an entry over 256,000 bytes and packs
calls whose entries total at most that (AWS's limit is on the whole request too).

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

from connectors.sinks.eventbridge.encoder import PutEventsEntry, aws_entry_size
from connectors.sinks.eventbridge.retry import classify_error, classify_response
from connectors.sinks.eventbridge.sink import SINK, EventBridgeSink

__all__ = [
    "SINK",
    "EventBridgeSink",
    "PutEventsEntry",
    "aws_entry_size",
    "classify_error",
    "classify_response",
]
