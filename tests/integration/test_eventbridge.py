"""The EventBridge connector against moto's server (in-process) and the real broker: events
reach an SQS queue through a bus rule, mapped; per-entry throttling is re-sent and a
MalformedDetail entry dead-lettered; a missing bus pauses the destination (auth_failed)
without loss; an entry over AWS's 256 KB is dead-lettered. moto cannot throttle nor check
entry sizes, so the faults are injected by wrapping the sink's boto3 client. Unit tests of
the size rule and the reply classification need no network."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from connectors.sinks import eventbridge
from connectors.sinks.base import encode_event
from connectors.sinks.eventbridge import EventBridgeSink, aws_entry_size
from schemas.destinations import Destination, make_destination
from tests.integration.aws import ACCESS_KEY, REGION, SECRET_KEY, Aws
from tests.integration.streaming import Stream, normalized_event, wait_until

# -- the wrapped boto3 client: what the worker thread's sink calls --------------------------------
Hook = Callable[[Any, list[dict[str, Any]]], dict[str, Any]]


class Recorder:
    """Wraps every EventBridge sink's boto3 client: records each PutEvents batch size and
    lets a test replace the call (``hook(real_client, entries) -> response``)."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.hook: Hook | None = None


class _Client:
    def __init__(self, real: Any, recorder: Recorder) -> None:
        self._real = real
        self._recorder = recorder

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self._recorder.batches.append(len(Entries))
        if self._recorder.hook is not None:
            return self._recorder.hook(self._real, Entries)
        result: dict[str, Any] = self._real.put_events(Entries=Entries)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    instance = Recorder()
    make = eventbridge._make_client
    monkeypatch.setattr(eventbridge, "_make_client", lambda s: _Client(make(s), instance))
    return instance


# -- the stream ----------------------------------------------------------------------------------
def add_eventbridge(stream: Stream, aws: Aws, bus: str) -> str:
    return stream.add(
        "eventbridge",
        {
            "region": REGION,
            "event_bus": bus,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            "endpoint": aws.url,
        },
    )


@pytest.fixture
def stream(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stream]:
    instance = Stream(kafka_bootstrap, tmp_path)
    yield instance
    instance.close()


def names() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"bus-{suffix}", f"queue-{suffix}"


def detail_ids(delivered: list[dict[str, Any]]) -> list[str]:
    return [str(envelope["detail"]["event_id"]) for envelope in delivered]


def headers_of(message: Any) -> dict[str, str]:
    return {key: (value or b"").decode() for key, value in message.headers()}


# -- through the broker and the runtime ---------------------------------------------------------
def test_every_event_arrives_once_mapped(aws: Aws, stream: Stream, recorder: Recorder) -> None:
    bus, queue = names()
    queue_url = aws.queue(queue)
    aws.bus(bus, queue_url)
    destination = add_eventbridge(stream, aws, bus)
    stream.start()
    events = stream.produce(150)
    delivered = aws.receive(queue_url, 150)
    assert sorted(detail_ids(delivered)) == sorted(e["event_id"] for e in events)  # once each
    envelope = next(d for d in delivered if d["detail"]["event_id"] == events[0]["event_id"])
    assert envelope["source"] == "authtrail"
    assert envelope["detail-type"] == "Login failed"
    assert envelope["detail"] == events[0]  # the whole normalized event
    assert envelope["time"] == "2026-11-26T12:00:00Z"
    assert envelope["resources"] == []
    other = next(d for d in delivered if d["detail"]["event_id"] == events[1]["event_id"])
    assert other["detail-type"] == "Login completed"
    assert recorder.batches and max(recorder.batches) <= 10
    assert sum(recorder.batches) == 150
    assert wait_until(lambda: stream.status(destination).delivered == 150)
    assert stream.status(destination).state == "healthy"


def test_partial_failure_resends_throttled_dead_letters_malformed(
    aws: Aws, stream: Stream, recorder: Recorder
) -> None:
    bus, queue = names()
    queue_url = aws.queue(queue)
    aws.bus(bus, queue_url)
    injected: dict[str, str] = {}

    def first_call_fails_two(real: Any, entries: list[dict[str, Any]]) -> dict[str, Any]:
        if injected or len(entries) < 2:
            result: dict[str, Any] = real.put_events(Entries=entries)
            return result
        injected["throttled"] = orjson.loads(entries[0]["Detail"])["event_id"]
        injected["malformed"] = orjson.loads(entries[1]["Detail"])["event_id"]
        accepted = real.put_events(Entries=entries[2:])
        return {
            "FailedEntryCount": accepted["FailedEntryCount"] + 2,
            "Entries": [
                {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"},
                {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."},
                *accepted["Entries"],
            ],
        }

    recorder.hook = first_call_fails_two
    destination = add_eventbridge(stream, aws, bus)
    stream.start()
    events = stream.produce(40)
    delivered = aws.receive(queue_url, 39)
    assert injected, "no PutEvents call of two or more entries was made"
    expected = {e["event_id"] for e in events} - {injected["malformed"]}
    assert sorted(detail_ids(delivered)) == sorted(expected)
    assert injected["throttled"] in detail_ids(delivered)
    letters = stream.dead_letters(destination, 1)
    assert len(letters) == 1
    assert orjson.loads(letters[0].value())["event_id"] == injected["malformed"]
    headers = headers_of(letters[0])
    assert headers["authtrail-platform"] == "eventbridge"
    assert headers["authtrail-platform-code"] == "MalformedDetail"
    assert headers["authtrail-platform-reply"] == "Detail is malformed."
    assert "refused by the platform" in headers["authtrail-reason"]
    assert wait_until(lambda: stream.status(destination).dead_lettered == 1)
    assert stream.status(destination).delivered == 39


def test_missing_bus_pauses_then_delivers_everything(
    aws: Aws, stream: Stream, recorder: Recorder
) -> None:
    bus, queue = names()
    queue_url = aws.queue(queue)
    destination = add_eventbridge(stream, aws, bus)  # the bus does not exist yet
    stream.start()
    events = stream.produce(30)
    assert wait_until(
        lambda: (
            stream.status(destination) is not None
            and stream.status(destination).state == "auth_failed"
        )
    )
    assert "does not exist" in (stream.status(destination).last_error or "")
    assert stream.status(destination).delivered == 0
    aws.bus(bus, queue_url)
    delivered = aws.receive(queue_url, 30)
    assert sorted(detail_ids(delivered)) == sorted(e["event_id"] for e in events)
    assert wait_until(lambda: stream.status(destination).state == "healthy")
    assert stream.status(destination).dead_lettered == 0


def test_entry_over_256_kb_is_dead_lettered(aws: Aws, stream: Stream, recorder: Recorder) -> None:
    bus, queue = names()
    queue_url = aws.queue(queue)
    aws.bus(bus, queue_url)
    destination = add_eventbridge(stream, aws, bus)
    stream.start()
    good = stream.produce(20)
    huge = stream.produce(1, attributes={"blob": "x" * 300_000})
    delivered = aws.receive(queue_url, 20)
    assert sorted(detail_ids(delivered)) == sorted(e["event_id"] for e in good)
    letters = stream.dead_letters(destination, 1)
    assert orjson.loads(letters[0].value())["event_id"] == huge[0]["event_id"]
    headers = headers_of(letters[0])
    assert headers["authtrail-platform"] == "eventbridge"
    assert headers["authtrail-platform-code"] == "too_large"
    assert "eventbridge takes at most 256000" in headers["authtrail-reason"]
    assert wait_until(lambda: stream.status(destination).dead_lettered == 1)


# -- unit: encoding, size rule, classification (no network) -------------------------------------
class FakeClient:
    """Stands in for boto3: answers ``put_events`` from a function, counts calls."""

    def __init__(self, answer: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> None:
        self.answer = answer
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        return self.answer(Entries)

    def describe_event_bus(self, Name: str) -> dict[str, Any]:
        return {"Name": Name}

    def close(self) -> None:
        pass


def destination(**values: str) -> Destination:
    settings = {"region": REGION, "event_bus": "audit", **values}
    return make_destination("eventbridge", "unit", settings)


def sink_with(
    monkeypatch: pytest.MonkeyPatch, answer: Callable[[list[dict[str, Any]]], dict[str, Any]]
) -> tuple[EventBridgeSink, FakeClient]:
    fake = FakeClient(answer)
    monkeypatch.setattr(eventbridge, "_make_client", lambda _settings: fake)
    return EventBridgeSink(destination()), fake


def client_error(code: str, status: int, message: str = "m") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "PutEvents",
    )


def raises(exc: Exception) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    def answer(_entries: list[dict[str, Any]]) -> dict[str, Any]:
        raise exc

    return answer


def accept(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"FailedEntryCount": 0, "Entries": [{"EventId": str(i)} for i in range(len(entries))]}


def test_encode_maps_the_event(monkeypatch: pytest.MonkeyPatch) -> None:
    sink, fake = sink_with(monkeypatch, accept)
    event = normalized_event(0)
    entry = orjson.loads(encode_event(sink, event))
    assert entry == {
        "Source": "authtrail",
        "DetailType": "Login failed",
        "Detail": orjson.dumps(event).decode(),
        "EventBusName": "audit",
        "Time": "2026-11-26T12:00:00.000Z",
        "Resources": [],
    }
    assert sink.send([encode_event(sink, event)]).kind == "ok"
    sent = fake.calls[0][0]
    assert sent["Time"].isoformat() == "2026-11-26T12:00:00+00:00"  # a datetime for boto3
    assert orjson.loads(sent["Detail"]) == event
    # DetailType: the event key when there is no text, at most 128 characters
    no_text = orjson.loads(encode_event(sink, {**event, "description": ""}))
    assert no_text["DetailType"] == "login.failed"
    long_text = orjson.loads(encode_event(sink, {**event, "description": "é" * 300}))
    assert long_text["DetailType"] == "é" * 128
    with pytest.raises(ValueError, match="occurred_at"):
        encode_event(sink, {**event, "occurred_at": "not a time"})  # dead-lettered upstream


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"description": "Connexion échouée — ユーザー"},
        {"attributes": {"quotes": '"' * 5000, "newlines": "\n" * 5000}},
        {"attributes": {"emoji": "\U0001f44d" * 60_000}},
        {"reason": "x" * 255_000},
    ],
)
def test_encoded_entry_is_never_smaller_than_aws_size(
    monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any]
) -> None:
    sink, _ = sink_with(monkeypatch, accept)
    body = encode_event(sink, normalized_event(3, **fields))
    assert len(body) >= aws_entry_size(orjson.loads(body))


def test_aws_size_rule() -> None:
    entry = {
        "Source": "authtrail",
        "DetailType": "é",
        "Detail": '{"a":"\U0001f44d"}',
        "Resources": ["arn:x", "\U0001f44d"],
        "Time": "2026-11-26T12:00:00.000Z",
        "EventBusName": "not counted",
    }
    assert aws_entry_size(entry) == 14 + 9 + 2 + 12 + 5 + 4
    assert aws_entry_size({**entry, "Time": None}) == 9 + 2 + 12 + 5 + 4


def test_oversized_entry_exceeds_the_entry_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    sink, _ = sink_with(monkeypatch, accept)
    body = encode_event(sink, normalized_event(1, attributes={"blob": "x" * 256_000}))
    assert aws_entry_size(orjson.loads(body)) > 256_000
    assert len(body) > sink.limits.max_entry_bytes
    assert sink.limits.max_entries == 10 and sink.limits.gzip is False


def test_request_over_the_total_size_is_split_before_sending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink, fake = sink_with(monkeypatch, accept)
    big = encode_event(sink, normalized_event(1, reason="y" * 100_000))
    result = sink.send([big, big, big])
    assert result.kind == "too_large" and fake.calls == []
    assert sink.send([big, big]).kind == "ok"


def test_partial_reply_per_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    def answer(entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "FailedEntryCount": 4,
            "Entries": [
                {"EventId": "a"},
                {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"},
                {"ErrorCode": "InternalFailure", "ErrorMessage": "oops"},
                {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."},
                {"ErrorCode": "InvalidArgument", "ErrorMessage": "bad"},
            ],
        }

    sink, _ = sink_with(monkeypatch, answer)
    body = encode_event(sink, normalized_event(0))
    result = sink.send([body] * 5)
    assert result.kind == "partial"
    assert result.entries == {0: "ok", 1: "retry", 2: "retry", 3: "invalid", 4: "invalid"}
    assert result.entry_replies[3].code == "MalformedDetail"
    assert result.entry_replies[3].message == "Detail is malformed."
    assert result.entry_replies[1].code == "ThrottlingException"
    assert 0 not in result.entry_replies


def test_every_entry_refused_for_authorization_is_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    def answer(entries: list[dict[str, Any]]) -> dict[str, Any]:
        refusal = {"ErrorCode": "NotAuthorizedForSourceException", "ErrorMessage": "no"}
        return {"FailedEntryCount": len(entries), "Entries": [refusal] * len(entries)}

    sink, _ = sink_with(monkeypatch, answer)
    result = sink.send([encode_event(sink, normalized_event(0))] * 3)
    assert result.kind == "auth"
    assert result.reply.code == "NotAuthorizedForSourceException"


def test_undecodable_entry_is_refused_the_others_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    sink, fake = sink_with(monkeypatch, accept)
    result = sink.send(
        [encode_event(sink, normalized_event(0)), b"", encode_event(sink, normalized_event(1))]
    )
    assert result.kind == "partial"
    assert result.entries == {0: "ok", 1: "invalid", 2: "ok"}
    assert len(fake.calls[0]) == 2


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (client_error("ThrottlingException", 400), "retry"),
        (client_error("InternalFailure", 500), "retry"),
        (client_error("ServiceUnavailable", 503), "retry"),
        (client_error("SomethingNew", 502), "retry"),
        (client_error("AccessDeniedException", 400), "auth"),
        (client_error("UnrecognizedClientException", 400), "auth"),
        (client_error("InvalidSignatureException", 400), "auth"),
        (client_error("ExpiredTokenException", 400), "auth"),
        (client_error("NotAuthorizedForSourceException", 400), "auth"),
        (client_error("ResourceNotFoundException", 400), "auth"),
        (client_error("ValidationException", 400), "invalid"),
        (client_error("InvalidArgument", 400), "invalid"),
        (
            client_error(
                "ValidationException",
                400,
                "Total size of the entries in the request is over the limit.",
            ),
            "too_large",
        ),
        (EndpointConnectionError(endpoint_url="https://events.eu-west-1.amazonaws.com"), "retry"),
        (ReadTimeoutError(endpoint_url="https://events.eu-west-1.amazonaws.com"), "retry"),
        (NoCredentialsError(), "auth"),
    ],
)
def test_whole_call_failures(monkeypatch: pytest.MonkeyPatch, exc: Exception, kind: str) -> None:
    sink, _ = sink_with(monkeypatch, raises(exc))
    result = sink.send([encode_event(sink, normalized_event(0))])
    assert result.kind == kind
    if isinstance(exc, ClientError):
        assert result.reply.code == exc.response["Error"]["Code"]


def test_missing_bus_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    error = client_error("ResourceNotFoundException", 400, "Event bus audit does not exist.")
    sink, _ = sink_with(monkeypatch, raises(error))
    result = sink.send([encode_event(sink, normalized_event(0))])
    assert result.kind == "auth"
    assert "event bus audit does not exist" in result.reply.message


def test_healthcheck(monkeypatch: pytest.MonkeyPatch) -> None:
    sink, fake = sink_with(monkeypatch, accept)
    assert sink.healthcheck().kind == "ok"

    def missing(Name: str) -> dict[str, Any]:
        raise client_error("ResourceNotFoundException", 400, f"Event bus {Name} does not exist.")

    fake.describe_event_bus = missing  # type: ignore[method-assign]
    assert sink.healthcheck().kind == "auth"


class _Throttling(BaseHTTPRequestHandler):
    hits = 0

    def do_POST(self) -> None:
        type(self).hits += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = orjson.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"})
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_one_attempt_per_send_botocore_does_not_retry() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Throttling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        sink = EventBridgeSink(
            destination(access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, endpoint=url)
        )
        result = sink.send([encode_event(sink, normalized_event(0))])
        sink.close()
    finally:
        server.shutdown()
        server.server_close()
    assert result.kind == "retry" and result.reply.code == "ThrottlingException"
    assert _Throttling.hits == 1


def test_client_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    keyed = eventbridge._make_client(
        destination(
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
            endpoint="http://127.0.0.1:9",
        ).settings  # type: ignore[arg-type]
    )
    try:
        assert keyed.meta.region_name == REGION
        assert keyed.meta.endpoint_url == "http://127.0.0.1:9"
        assert keyed.meta.config.retries == {"total_max_attempts": 1, "mode": "standard"}
        assert keyed._request_signer._credentials.access_key == ACCESS_KEY
    finally:
        keyed.close()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMTHEDEFAULTCHAIN")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env")
    chained = eventbridge._make_client(destination().settings)  # type: ignore[arg-type]
    try:
        assert chained.meta.endpoint_url == f"https://events.{REGION}.amazonaws.com"
        assert chained._request_signer._credentials.access_key == "AKIAFROMTHEDEFAULTCHAIN"
    finally:
        chained.close()
