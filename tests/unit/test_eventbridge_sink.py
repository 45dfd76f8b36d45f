"""The EventBridge sink on its own: the encoder and AWS's size rule, the retry logic over
PutEvents answers and failed calls, the healthcheck and the boto3 client's settings, with
boto3 answering from a function (no AWS, no moto); the path through moto and the broker is
tests/integration/test_eventbridge.py."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from connectors.runtime.delivery import Delivery
from connectors.sinks.base import encode_event, never
from connectors.sinks.eventbridge import EventBridgeSink, aws_entry_size
from connectors.sinks.eventbridge import client as eventbridge_client
from schemas.destinations import Destination, make_destination
from tests.integration.aws import ACCESS_KEY, REGION, SECRET_KEY
from tests.integration.streaming import normalized_event


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
    monkeypatch.setattr(eventbridge_client, "make_client", lambda _settings: fake)
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
    entry = encode_event(sink, event)
    assert entry.request == {
        "Source": "authtrail",
        "DetailType": "Login failed",
        "Detail": orjson.dumps(event).decode(),
        "EventBusName": "audit",
        "Time": datetime(2026, 11, 26, 12, tzinfo=UTC),  # a datetime, as boto3 takes it
        "Resources": [],
    }
    assert sink.size(entry) == aws_entry_size(entry.request)
    assert sink.send([entry]).kind == "ok"
    assert fake.calls == [[entry.request]]
    # Time in milliseconds, in UTC
    later = encode_event(sink, {**event, "occurred_at": "2026-11-26T13:00:00.123456+01:00"})
    assert later.request["Time"] == datetime(2026, 11, 26, 12, 0, 0, 123_000, tzinfo=UTC)
    # DetailType: the event key when there is no text, at most 128 characters
    no_text = encode_event(sink, {**event, "description": ""})
    assert no_text.request["DetailType"] == "login.failed"
    long_text = encode_event(sink, {**event, "description": "é" * 300})
    assert long_text.request["DetailType"] == "é" * 128
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
        {"occurred_at": None},
    ],
)
def test_entry_size_is_aws_size(monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any]) -> None:
    sink, _ = sink_with(monkeypatch, accept)
    entry = encode_event(sink, normalized_event(3, **fields))
    assert sink.size(entry) == aws_entry_size(entry.request)


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


def test_oversized_entry_is_dead_lettered_unsent(monkeypatch: pytest.MonkeyPatch) -> None:
    sink, fake = sink_with(monkeypatch, accept)
    entry = encode_event(sink, normalized_event(1, attributes={"blob": "x" * 256_000}))
    assert sink.size(entry) > sink.limits.max_entry_bytes
    assert sink.limits.max_entries == 10 and sink.limits.gzip is False
    refused = Delivery(sink, never).deliver([entry])
    assert [r.index for r in refused] == [0] and "at most 256000" in refused[0].reason
    assert fake.calls == []


def test_calls_are_packed_by_aws_size_of_all_their_entries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink, fake = sink_with(monkeypatch, accept)
    big = encode_event(sink, normalized_event(1, reason="y" * 100_000))
    small = encode_event(sink, normalized_event(2))
    assert Delivery(sink, never).deliver([big, big, big, small]) == []
    assert [len(call) for call in fake.calls] == [2, 2]
    for call in fake.calls:
        assert sum(aws_entry_size(request) for request in call) <= 256_000


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
    keyed = eventbridge_client.make_client(
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
    chained = eventbridge_client.make_client(destination().settings)  # type: ignore[arg-type]
    try:
        assert chained.meta.endpoint_url == f"https://events.{REGION}.amazonaws.com"
        assert chained._request_signer._credentials.access_key == "AKIAFROMTHEDEFAULTCHAIN"
    finally:
        chained.close()
