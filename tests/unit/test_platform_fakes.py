"""The local platform receivers: each contract, error reply and fault, over real HTTP."""

from __future__ import annotations

import gzip
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
import zstandard

from tests.platform_fakes import (
    BodyDecodeError,
    CoralogixReceiver,
    DatadogReceiver,
    Faults,
    Receiver,
    SplunkReceiver,
    Store,
    SumoReceiver,
    UnsupportedEncodingError,
    decode_body,
)
from tests.platform_fakes.base import retry_after_value

DD_KEY = "dd-test-key"
SPLUNK_TOKEN = "11111111-2222-3333-4444-555555555555"
SPLUNK_OTHER_TOKEN = "66666666-7777-8888-9999-000000000000"
SUMO_CODE = "ZaVnC4dhaV2ZxXt0ydVpmLl7qKH9QjVKs0cA9xhEbY4sfMfs_Q=="
CX_KEY = "cxtp_test_key"

DD_HEADERS = {"DD-API-KEY": DD_KEY}
SPLUNK_HEADERS = {"Authorization": f"Splunk {SPLUNK_TOKEN}"}
CX_HEADERS = {"Authorization": f"Bearer {CX_KEY}"}


def ndjson(*events: Any, sep: bytes = b"\n") -> bytes:
    return sep.join(orjson.dumps(event) for event in events)


def cx_entry(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"applicationName": "authtrail", "subsystemName": "auth", "text": "{}"}
    entry.update(overrides)
    return entry


# Fixtures: one server per platform for the module, reset before each test.


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as http:
        yield http


@pytest.fixture(scope="module")
def _datadog() -> Iterator[DatadogReceiver]:
    with DatadogReceiver(DD_KEY) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def _splunk() -> Iterator[SplunkReceiver]:
    with SplunkReceiver({SPLUNK_TOKEN, SPLUNK_OTHER_TOKEN}, indexes={"main", "auth"}) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def _splunk_ack() -> Iterator[SplunkReceiver]:
    with SplunkReceiver(SPLUNK_TOKEN, require_ack=True, ack_delay=0.3) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def _sumo() -> Iterator[SumoReceiver]:
    with SumoReceiver(SUMO_CODE) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def _coralogix() -> Iterator[CoralogixReceiver]:
    with CoralogixReceiver(CX_KEY) as receiver:
        yield receiver


@pytest.fixture
def datadog(_datadog: DatadogReceiver) -> DatadogReceiver:
    _datadog.reset()
    return _datadog


@pytest.fixture
def splunk(_splunk: SplunkReceiver) -> SplunkReceiver:
    _splunk.reset()
    return _splunk


@pytest.fixture
def splunk_ack(_splunk_ack: SplunkReceiver) -> SplunkReceiver:
    _splunk_ack.reset()
    return _splunk_ack


@pytest.fixture
def sumo(_sumo: SumoReceiver) -> SumoReceiver:
    _sumo.reset()
    return _sumo


@pytest.fixture
def coralogix(_coralogix: CoralogixReceiver) -> CoralogixReceiver:
    _coralogix.reset()
    return _coralogix


# Shared machinery.


def test_decode_body_codings() -> None:
    data = b"line one\nline two\n" * 100
    assert decode_body(data, None, 10_000) == data
    assert decode_body(data, "identity", 10_000) == data
    assert decode_body(gzip.compress(data), "gzip", 10_000) == data
    assert decode_body(gzip.compress(data) + gzip.compress(data), "x-gzip", 10_000) == data * 2
    assert decode_body(zlib.compress(data), "deflate", 10_000) == data
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert decode_body(raw_deflate.compress(data) + raw_deflate.flush(), "deflate", 10_000) == data
    assert decode_body(zstandard.ZstdCompressor().compress(data), "zstd", 10_000) == data
    assert decode_body(zlib.compress(gzip.compress(data)), "gzip, deflate", 10_000) == data


def test_decode_body_errors_and_cap() -> None:
    with pytest.raises(BodyDecodeError):
        decode_body(b"not gzip at all", "gzip", 1000)
    with pytest.raises(BodyDecodeError):
        decode_body(gzip.compress(b"x" * 1000)[:-12], "gzip", 10_000)
    with pytest.raises(BodyDecodeError):
        decode_body(b"not zstd", "zstd", 1000)
    with pytest.raises(BodyDecodeError):
        decode_body(zstandard.ZstdCompressor().compress(b"y" * 5000)[:-4], "zstd", 10_000)
    with pytest.raises(UnsupportedEncodingError):
        decode_body(b"data", "br", 1000)
    # A bomb stops inflating just past the cap, so the caller can answer 413 cheaply.
    bomb = b"\0" * 50_000_000
    assert len(decode_body(gzip.compress(bomb), "gzip", 1000)) == 1001
    assert len(decode_body(zstandard.ZstdCompressor().compress(bomb), "zstd", 1000)) > 1000


def test_faults_plan_order_and_validation() -> None:
    faults = Faults()
    faults.fail_next(2, 503)
    faults.throttle(1, 2)
    assert faults.pending == 3
    taken = [faults.take() for _ in range(4)]
    assert [reply.status if reply else None for reply in taken] == [503, 503, 429, None]
    assert taken[2] is not None and taken[2].headers == {"Retry-After": "2"}
    with pytest.raises(ValueError):
        faults.fail_next(-1, 500)
    with pytest.raises(ValueError):
        faults.fail_next(1, 99)
    with pytest.raises(ValueError):
        faults.reject_marker("")
    faults.set_delay(1)
    faults.reject_marker("boom")
    faults.set_credentials_valid(False)
    faults.fail_next(5, 500)
    faults.clear()
    assert (faults.delay, faults.marker, faults.credentials_valid, faults.pending) == (
        0.0,
        None,
        True,
        0,
    )
    assert retry_after_value(3.0) == "3"
    assert retry_after_value(0.25) == "0.25"


def test_store_wait_for_and_reset() -> None:
    store = Store()
    timer = threading.Timer(0.05, store.accept, args=([{"a": 1}, {"a": 2}], 10))
    timer.start()
    assert store.wait_for(2, timeout=2.0)
    timer.join()
    assert not store.wait_for(3, timeout=0.05)
    events = store.events()
    events.append({"not": "stored"})
    assert store.events() == [{"a": 1}, {"a": 2}]
    assert (store.accepted_requests, store.bytes_accepted, store.event_count) == (1, 10, 2)
    store.reset()
    assert (store.events(), store.event_count, store.requests) == ([], 0, {})

    counting = Store(keep_events=False)
    counting.accept([{"a": 1}] * 3, 5)
    assert (counting.events(), counting.event_count) == ([], 3)


def test_server_binds_loopback_and_refuses_double_start() -> None:
    receiver = DatadogReceiver(DD_KEY)
    with pytest.raises(RuntimeError):
        _ = receiver.url
    with receiver:
        assert receiver.url == f"http://127.0.0.1:{receiver.port}"
        with pytest.raises(RuntimeError):
            receiver.start()
    receiver.stop()


def test_down_refuses_then_up_serves_on_same_port(client: httpx.Client) -> None:
    with DatadogReceiver(DD_KEY) as receiver:
        url = f"{receiver.url}/api/v2/logs"
        assert client.post(url, json=[{"message": "a"}], headers=DD_HEADERS).status_code == 202
        port = receiver.port
        receiver.down()
        with pytest.raises(httpx.ConnectError):
            client.post(url, json=[{"message": "b"}], headers=DD_HEADERS)
        receiver.up()
        assert receiver.port == port
        assert client.post(url, json=[{"message": "c"}], headers=DD_HEADERS).status_code == 202
        assert [e["message"] for e in receiver.store.events()] == ["a", "c"]


def test_down_drops_an_in_flight_request(client: httpx.Client) -> None:
    with DatadogReceiver(DD_KEY) as receiver:
        receiver.faults.set_delay(5)
        outcome: list[BaseException | httpx.Response] = []

        def send() -> None:
            try:
                outcome.append(
                    client.post(
                        f"{receiver.url}/api/v2/logs", json=[{"message": "x"}], headers=DD_HEADERS
                    )
                )
            except httpx.TransportError as exc:
                outcome.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(0.1)
        started = time.monotonic()
        receiver.down()
        sender.join(2)
        assert time.monotonic() - started < 2
        assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError)
        assert receiver.store.event_count == 0


# Faults, across every platform.

Send = Callable[[httpx.Client, Receiver, bytes], httpx.Response]


def _send_datadog(client: httpx.Client, r: Receiver, marker: bytes) -> httpx.Response:
    body = orjson.dumps([{"message": "ok"}, {"message": marker.decode()}])
    return client.post(f"{r.url}/api/v2/logs", content=body, headers=DD_HEADERS)


def _send_splunk(client: httpx.Client, r: Receiver, marker: bytes) -> httpx.Response:
    body = ndjson({"event": "ok"}, {"event": marker.decode()})
    return client.post(f"{r.url}/services/collector/event", content=body, headers=SPLUNK_HEADERS)


def _send_sumo(client: httpx.Client, r: Receiver, marker: bytes) -> httpx.Response:
    return client.post(f"{r.url}/receiver/v1/http/{SUMO_CODE}", content=b"ok\n" + marker)


def _send_coralogix(client: httpx.Client, r: Receiver, marker: bytes) -> httpx.Response:
    body = orjson.dumps([cx_entry(text="ok"), cx_entry(text=marker.decode())])
    return client.post(f"{r.url}/logs/v1/singles", content=body, headers=CX_HEADERS)


PLATFORMS = {
    # fixture, sender, success status, auth-failure status
    "datadog": ("datadog", _send_datadog, 202, 403),
    "splunk": ("splunk", _send_splunk, 200, 403),
    "sumo": ("sumo", _send_sumo, 200, 401),
    "coralogix": ("coralogix", _send_coralogix, 200, 401),
}


@pytest.fixture(params=sorted(PLATFORMS))
def platform(request: pytest.FixtureRequest) -> tuple[Receiver, Send, int, int]:
    fixture, send, ok, auth_status = PLATFORMS[request.param]
    receiver: Receiver = request.getfixturevalue(fixture)
    return receiver, send, ok, auth_status


def test_fault_fail_next(client: httpx.Client, platform: tuple[Receiver, Send, int, int]) -> None:
    receiver, send, ok, _ = platform
    receiver.faults.fail_next(2, 503)
    receiver.faults.fail_next(1, 408, body=b"custom", headers={"X-Fault": "yes"})
    first, second, third, fourth = (send(client, receiver, b"m") for _ in range(4))
    assert (first.status_code, second.status_code) == (503, 503)
    assert (third.status_code, third.content, third.headers["x-fault"]) == (408, b"custom", "yes")
    assert fourth.status_code == ok
    assert receiver.store.requests == {503: 2, 408: 1, ok: 1}
    assert receiver.store.event_count == 2


def test_fault_throttle_sets_retry_after(
    client: httpx.Client, platform: tuple[Receiver, Send, int, int]
) -> None:
    receiver, send, ok, _ = platform
    receiver.faults.throttle(1, 1.5)
    receiver.faults.throttle(1, 2)
    first, second, third = (send(client, receiver, b"m") for _ in range(3))
    assert (first.status_code, first.headers["retry-after"]) == (429, "1.5")
    assert (second.status_code, second.headers["retry-after"]) == (429, "2")
    assert third.status_code == ok
    assert receiver.store.accepted_requests == 1


def test_fault_delay(client: httpx.Client, platform: tuple[Receiver, Send, int, int]) -> None:
    receiver, send, ok, _ = platform
    receiver.faults.set_delay(0.2)
    started = time.monotonic()
    assert send(client, receiver, b"m").status_code == ok
    assert time.monotonic() - started >= 0.2
    receiver.faults.set_delay(0)
    started = time.monotonic()
    assert send(client, receiver, b"m").status_code == ok
    assert time.monotonic() - started < 0.2


def test_fault_reject_marker(
    client: httpx.Client, platform: tuple[Receiver, Send, int, int]
) -> None:
    receiver, send, ok, _ = platform
    receiver.faults.reject_marker("POISON-123")
    assert send(client, receiver, b"fine").status_code == ok
    assert send(client, receiver, b"has POISON-123 inside").status_code == 400
    receiver.faults.reject_marker(None)
    assert send(client, receiver, b"has POISON-123 inside").status_code == ok
    assert receiver.store.accepted_requests == 2


def test_fault_credentials_invalid(
    client: httpx.Client, platform: tuple[Receiver, Send, int, int]
) -> None:
    receiver, send, ok, auth_status = platform
    receiver.faults.set_credentials_valid(False)
    assert send(client, receiver, b"m").status_code == auth_status
    receiver.faults.set_credentials_valid(True)
    assert send(client, receiver, b"m").status_code == ok
    assert receiver.store.requests == {auth_status: 1, ok: 1}


def test_fault_success_without_storing(
    client: httpx.Client, platform: tuple[Receiver, Send, int, int]
) -> None:
    receiver, send, ok, _ = platform
    receiver.faults.fail_next(1, ok)
    assert send(client, receiver, b"m").status_code == ok
    assert receiver.store.event_count == 0


# Datadog.


def test_datadog_accepts_plain_and_gzip(client: httpx.Client, datadog: DatadogReceiver) -> None:
    url = f"{datadog.url}/api/v2/logs"
    logs = [{"message": f"m{i}", "ddsource": "authtrail", "ddtags": "env:test"} for i in range(3)]
    response = client.post(url, json=logs, headers=DD_HEADERS)
    assert (response.status_code, response.json()) == (202, {})
    body = gzip.compress(orjson.dumps(logs))
    response = client.post(url, content=body, headers={**DD_HEADERS, "Content-Encoding": "gzip"})
    assert response.status_code == 202
    assert datadog.store.events() == logs + logs
    assert datadog.store.requests == {202: 2}
    assert datadog.store.bytes_accepted == 2 * len(orjson.dumps(logs))
    assert datadog.store.wait_for(6, timeout=0.1)


@pytest.mark.parametrize("headers", [{}, {"DD-API-KEY": "wrong"}, {"Authorization": DD_KEY}])
def test_datadog_auth_errors(
    client: httpx.Client, datadog: DatadogReceiver, headers: dict[str, str]
) -> None:
    response = client.post(f"{datadog.url}/api/v2/logs", json=[{"message": "x"}], headers=headers)
    assert (response.status_code, response.json()) == (403, {"errors": ["Forbidden"]})
    assert datadog.store.event_count == 0


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b'{"message": "not an array"}', {}, 400),
        (b"[{]", {}, 400),
        (b'[{"message": "a"}, "bare string"]', {}, 400),
        (b"garbage", {"Content-Encoding": "gzip"}, 400),
        (b"[]", {"Content-Encoding": "br"}, 415),
        (orjson.dumps([{"message": "x"}] * 1001), {}, 413),
        (orjson.dumps([{"message": "x" * 5_000_000}]), {}, 413),
    ],
)
def test_datadog_body_errors(
    client: httpx.Client,
    datadog: DatadogReceiver,
    body: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    response = client.post(
        f"{datadog.url}/api/v2/logs", content=body, headers={**DD_HEADERS, **headers}
    )
    assert response.status_code == status
    errors = response.json()["errors"]
    assert isinstance(errors, list) and errors and isinstance(errors[0], str)
    assert datadog.store.event_count == 0


def test_datadog_limits_at_the_edge(client: httpx.Client, datadog: DatadogReceiver) -> None:
    url = f"{datadog.url}/api/v2/logs"
    assert client.post(url, json=[{"message": "x"}] * 1000, headers=DD_HEADERS).status_code == 202
    assert datadog.store.event_count == 1000


def test_datadog_truncates_oversized_log(client: httpx.Client, datadog: DatadogReceiver) -> None:
    big = {"message": 'é"' * 400_000, "service": "authtrail"}
    small = {"message": "small"}
    response = client.post(f"{datadog.url}/api/v2/logs", json=[small, big], headers=DD_HEADERS)
    assert response.status_code == 202
    stored_small, stored_big = datadog.store.events()
    assert stored_small == small
    assert stored_big["service"] == "authtrail"
    assert 900_000 < len(orjson.dumps(stored_big)) <= 1_000_000
    assert big["message"].startswith(stored_big["message"])
    assert datadog.store.truncated == 1


def test_datadog_truncates_log_whose_bulk_is_not_the_message(
    client: httpx.Client, datadog: DatadogReceiver
) -> None:
    big = {"message": "m", "attributes": {"blob": "z" * 1_200_000}}
    response = client.post(f"{datadog.url}/api/v2/logs", json=[big], headers=DD_HEADERS)
    assert response.status_code == 202
    (stored,) = datadog.store.events()
    assert len(orjson.dumps(stored)) <= 1_000_000
    assert stored["message"].startswith('{"message":"m"')
    assert datadog.store.truncated == 1


# Splunk HEC.


@pytest.mark.parametrize(
    "path", ["/services/collector/event", "/services/collector", "/services/collector/event/1.0"]
)
def test_splunk_accepts_on_every_event_path(
    client: httpx.Client, splunk: SplunkReceiver, path: str
) -> None:
    event = {
        "time": 1_700_000_000.125,
        "host": "idp-1",
        "source": "authtrail",
        "sourcetype": "authtrail:event",
        "index": "auth",
        "event": {"type": "login.succeeded"},
        "fields": {"tenant": "acme", "tags": ["a", "b"]},
    }
    response = client.post(
        f"{splunk.url}{path}",
        content=ndjson(event, event),
        headers={**SPLUNK_HEADERS, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (response.status_code, response.json()) == (200, {"text": "Success", "code": 0})
    assert splunk.store.events() == [event, event]


@pytest.mark.parametrize(
    "sep", [b"", b"\n", b"\r\n", b" \t ", b"\n\n"], ids=["none", "lf", "crlf", "spaces", "blank"]
)
def test_splunk_concatenation_layouts(
    client: httpx.Client, splunk: SplunkReceiver, sep: bytes
) -> None:
    events = [{"event": f"e{i}"} for i in range(3)]
    response = client.post(
        f"{splunk.url}/services/collector/event",
        content=sep + ndjson(*events, sep=sep) + sep,
        headers=SPLUNK_HEADERS,
    )
    assert response.status_code == 200
    assert splunk.store.events() == events


def test_splunk_pretty_printed_and_gzip(client: httpx.Client, splunk: SplunkReceiver) -> None:
    events = [{"event": {"n": i, "nested": {"deep": [1, 2]}}} for i in range(2)]
    pretty = b"\n".join(orjson.dumps(e, option=orjson.OPT_INDENT_2) for e in events)
    response = client.post(
        f"{splunk.url}/services/collector/event",
        content=gzip.compress(pretty),
        headers={**SPLUNK_HEADERS, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200
    assert splunk.store.events() == events


@pytest.mark.parametrize(
    ("headers", "status", "reply"),
    [
        ({}, 401, {"text": "Token is required", "code": 2}),
        (
            {"Authorization": f"Bearer {SPLUNK_TOKEN}"},
            401,
            {"text": "Invalid authorization", "code": 3},
        ),
        ({"Authorization": SPLUNK_TOKEN}, 401, {"text": "Invalid authorization", "code": 3}),
        ({"Authorization": "Splunk"}, 401, {"text": "Invalid authorization", "code": 3}),
        ({"Authorization": "Splunk nope"}, 403, {"text": "Invalid token", "code": 4}),
    ],
)
def test_splunk_auth_errors(
    client: httpx.Client,
    splunk: SplunkReceiver,
    headers: dict[str, str],
    status: int,
    reply: dict[str, Any],
) -> None:
    response = client.post(
        f"{splunk.url}/services/collector/event", content=ndjson({"event": "x"}), headers=headers
    )
    assert (response.status_code, response.json()) == (status, reply)
    assert splunk.store.event_count == 0


def test_splunk_disabled_token(client: httpx.Client, splunk: SplunkReceiver) -> None:
    url = f"{splunk.url}/services/collector/event"
    splunk.disable_token(SPLUNK_TOKEN)
    response = client.post(url, content=ndjson({"event": "x"}), headers=SPLUNK_HEADERS)
    assert (response.status_code, response.json()) == (403, {"text": "Token disabled", "code": 1})
    other = {"Authorization": f"Splunk {SPLUNK_OTHER_TOKEN}"}
    assert client.post(url, content=ndjson({"event": "x"}), headers=other).status_code == 200
    splunk.enable_token(SPLUNK_TOKEN)
    assert (
        client.post(url, content=ndjson({"event": "x"}), headers=SPLUNK_HEADERS).status_code == 200
    )
    with pytest.raises(ValueError):
        splunk.disable_token("unknown")


def hec(text: str, code: int, event_number: int | None = None) -> dict[str, Any]:
    reply: dict[str, Any] = {"text": text, "code": code}
    if event_number is not None:
        reply["invalid-event-number"] = event_number
    return reply


INVALID = "Invalid data format"
BLANK = "Event field cannot be blank"
FIELDS = "Error in handling indexed fields"


@pytest.mark.parametrize(
    ("body", "reply"),
    [
        (b"", hec("No data", 5)),
        (b" \n ", hec("No data", 5)),
        (b'{"event": "a"}\n{"event": ', hec(INVALID, 6, 1)),
        (b'{"event": "a"}{"event": "b"}{oops}', hec(INVALID, 6, 2)),
        (b'[{"event": "a"}]', hec(INVALID, 6, 0)),
        (b'{"event": "a"} 42', hec(INVALID, 6, 1)),
        (b'{"event": "a"}\n{"event": NaN}', hec(INVALID, 6, 1)),
        (b'{"event": "a"}{"event": NaN}', hec(INVALID, 6, 1)),
        (b'{"event": "a"}\n{"event": "\xff"}', hec(INVALID, 6, 1)),
        (b'{"event": "a"}\n{"time": 1}', hec("Event field is required", 12, 1)),
        (b'{"event": ""}', hec(BLANK, 13, 0)),
        (b'{"event": "a"}{"event": {}}', hec(BLANK, 13, 1)),
        (b'{"event": null}', hec(BLANK, 13, 0)),
        (b'{"event": "a", "index": "secret"}', hec("Incorrect index", 7, 0)),
        (b'{"event": "a", "fields": {"k": {"nested": 1}}}', hec(FIELDS, 15, 0)),
        (b'{"event": "a", "fields": ["k"]}', hec(FIELDS, 15, 0)),
    ],
)
def test_splunk_body_errors_are_all_or_nothing(
    client: httpx.Client, splunk: SplunkReceiver, body: bytes, reply: dict[str, Any]
) -> None:
    response = client.post(
        f"{splunk.url}/services/collector/event", content=body, headers=SPLUNK_HEADERS
    )
    assert (response.status_code, response.json()) == (400, reply)
    assert splunk.store.event_count == 0
    assert splunk.store.requests == {400: 1}


def test_splunk_undecodable_body(client: httpx.Client, splunk: SplunkReceiver) -> None:
    response = client.post(
        f"{splunk.url}/services/collector/event",
        content=b"not gzip",
        headers={**SPLUNK_HEADERS, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == 6


def test_splunk_content_too_large(client: httpx.Client, splunk: SplunkReceiver) -> None:
    url = f"{splunk.url}/services/collector/event"
    event = {"event": "x" * 1000}
    fits = ndjson(*[event] * 900)
    assert len(fits) <= 1_000_000
    assert client.post(url, content=fits, headers=SPLUNK_HEADERS).status_code == 200
    too_big = ndjson(*[event] * 1000)
    for body, extra in ((too_big, {}), (gzip.compress(too_big), {"Content-Encoding": "gzip"})):
        response = client.post(url, content=body, headers={**SPLUNK_HEADERS, **extra})
        assert (response.status_code, response.json()) == (
            413,
            {"text": "Content too large", "code": 413},
        )
    assert splunk.store.event_count == 900


def test_splunk_server_busy_and_internal_error(
    client: httpx.Client, splunk: SplunkReceiver
) -> None:
    url = f"{splunk.url}/services/collector/event"
    splunk.faults.fail_next(1, 503, {"text": "Server is busy", "code": 9})
    splunk.faults.fail_next(1, 503)
    splunk.faults.fail_next(1, 500)
    splunk.faults.throttle(1, 1)
    replies = [
        client.post(url, content=ndjson({"event": "x"}), headers=SPLUNK_HEADERS) for _ in range(4)
    ]
    assert [(r.status_code, r.json()) for r in replies] == [
        (503, {"text": "Server is busy", "code": 9}),
        (503, {"text": "Server is busy", "code": 9}),
        (500, {"text": "Internal server error", "code": 8}),
        (429, {"text": "Server is busy", "code": 9}),
    ]


def test_splunk_marker_names_the_event(client: httpx.Client, splunk: SplunkReceiver) -> None:
    splunk.faults.reject_marker("POISON")
    body = ndjson({"event": "a"}, {"event": "b"}, {"event": {"x": "POISON"}})
    response = client.post(
        f"{splunk.url}/services/collector/event", content=body, headers=SPLUNK_HEADERS
    )
    assert (response.status_code, response.json()) == (
        400,
        {"text": "Invalid data format", "code": 6, "invalid-event-number": 2},
    )
    assert splunk.store.event_count == 0


def test_splunk_health(client: httpx.Client, splunk: SplunkReceiver) -> None:
    response = client.get(f"{splunk.url}/services/collector/health")
    assert (response.status_code, response.json()) == (200, {"text": "HEC is healthy", "code": 17})


def test_splunk_ack_disabled(client: httpx.Client, splunk: SplunkReceiver) -> None:
    channel = str(uuid.uuid4())
    response = client.post(
        f"{splunk.url}/services/collector/ack",
        json={"acks": [0]},
        headers={**SPLUNK_HEADERS, "X-Splunk-Request-Channel": channel},
    )
    assert (response.status_code, response.json()) == (400, {"text": "ACK is disabled", "code": 14})
    # Without ack, a channel header is allowed and no ackId is given.
    response = client.post(
        f"{splunk.url}/services/collector/event",
        content=ndjson({"event": "x"}),
        headers={**SPLUNK_HEADERS, "X-Splunk-Request-Channel": channel},
    )
    assert response.json() == {"text": "Success", "code": 0}


def test_splunk_ack_channel_required(client: httpx.Client, splunk_ack: SplunkReceiver) -> None:
    url = f"{splunk_ack.url}/services/collector/event"
    body = ndjson({"event": "x"})
    response = client.post(url, content=body, headers=SPLUNK_HEADERS)
    assert (response.status_code, response.json()) == (
        400,
        {"text": "Data channel is missing", "code": 10},
    )
    bad = {**SPLUNK_HEADERS, "X-Splunk-Request-Channel": "not-a-uuid"}
    response = client.post(url, content=body, headers=bad)
    assert (response.status_code, response.json()) == (
        400,
        {"text": "Invalid data channel", "code": 11},
    )
    response = client.post(
        url, content=body, headers=SPLUNK_HEADERS, params={"channel": str(uuid.uuid4())}
    )
    assert response.json() == {"text": "Success", "code": 0, "ackId": 0}
    assert splunk_ack.store.event_count == 1


def test_splunk_ack_flow(client: httpx.Client, splunk_ack: SplunkReceiver) -> None:
    channel, other = str(uuid.uuid4()), str(uuid.uuid4())
    url = f"{splunk_ack.url}/services/collector/event"
    ack_url = f"{splunk_ack.url}/services/collector/ack"
    headers = {**SPLUNK_HEADERS, "X-Splunk-Request-Channel": channel}

    def send(channel_headers: dict[str, str]) -> int:
        response = client.post(url, content=ndjson({"event": "x"}), headers=channel_headers)
        assert response.status_code == 200
        ack_id = response.json()["ackId"]
        assert isinstance(ack_id, int)
        return ack_id

    def poll(ids: list[int]) -> dict[str, bool]:
        response = client.post(ack_url, json={"acks": ids}, headers=headers)
        assert response.status_code == 200
        acks: dict[str, bool] = response.json()["acks"]
        return acks

    assert [send(headers), send(headers)] == [0, 1]
    assert send({**SPLUNK_HEADERS, "X-Splunk-Request-Channel": other}) == 0
    # A failed request is given no ackId and does not advance the counter.
    splunk_ack.faults.fail_next(1, 503)
    assert client.post(url, content=ndjson({"event": "x"}), headers=headers).status_code == 503

    assert poll([0, 1, 7]) == {"0": False, "1": False, "7": False}
    deadline = time.monotonic() + 2
    while not all(poll([0, 1]).values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    # The poll that saw them true released them, as Splunk does.
    assert poll([0, 1]) == {"0": False, "1": False}
    assert send(headers) == 2
    assert splunk_ack.ack_requests >= 3
    assert splunk_ack.store.requests == {200: 4, 503: 1}


def test_splunk_ack_endpoint_errors(client: httpx.Client, splunk_ack: SplunkReceiver) -> None:
    ack_url = f"{splunk_ack.url}/services/collector/ack"
    channel = {"X-Splunk-Request-Channel": str(uuid.uuid4())}
    response = client.post(ack_url, json={"acks": [0]}, headers=SPLUNK_HEADERS)
    assert response.json() == {"text": "Data channel is missing", "code": 10}
    response = client.post(ack_url, json={"acks": [0]}, headers=channel)
    assert (response.status_code, response.json()["code"]) == (401, 2)
    for bad in (b"nope", b'{"acks": "0"}', b'{"acks": [-1]}', b"[0]"):
        response = client.post(ack_url, content=bad, headers={**SPLUNK_HEADERS, **channel})
        assert (response.status_code, response.json()["code"]) == (400, 6)
    splunk_ack.faults.set_credentials_valid(False)
    response = client.post(ack_url, json={"acks": [0]}, headers={**SPLUNK_HEADERS, **channel})
    assert (response.status_code, response.json()) == (403, {"text": "Invalid token", "code": 4})


# Sumo Logic.


def test_sumo_records_lines_and_headers(client: httpx.Client, sumo: SumoReceiver) -> None:
    headers = {
        "X-Sumo-Category": "prod/authtrail",
        "X-Sumo-Name": "authtrail-connector",
        "X-Sumo-Host": "node-1",
        "X-Sumo-Fields": "tenant=acme,env=prod",
    }
    response = client.post(
        sumo.endpoint, content=b'{"a":1}\n\n{"a":2}\r\nplain text\n', headers=headers
    )
    assert (response.status_code, response.content) == (200, b"")
    meta = {"category": "prod/authtrail", "name": "authtrail-connector", "host": "node-1"}
    meta["fields"] = "tenant=acme,env=prod"
    assert sumo.store.events() == [
        {"line": '{"a":1}', **meta},
        {"line": '{"a":2}', **meta},
        {"line": "plain text", **meta},
    ]
    sumo.store.reset()
    assert client.post(sumo.endpoint, content=b"bare").status_code == 200
    assert sumo.store.events() == [
        {"line": "bare", "category": None, "name": None, "host": None, "fields": None}
    ]


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("zstd", zstandard.ZstdCompressor().compress),
    ],
)
def test_sumo_compressed_bodies(
    client: httpx.Client,
    sumo: SumoReceiver,
    encoding: str,
    compress: Callable[[bytes], bytes],
) -> None:
    lines = [f"line {i} é" for i in range(50)]
    body = compress("\n".join(lines).encode())
    response = client.post(sumo.endpoint, content=body, headers={"Content-Encoding": encoding})
    assert response.status_code == 200
    assert [record["line"] for record in sumo.store.events()] == lines


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"\x28\xb5\x2f\xfd broken", {"Content-Encoding": "zstd"}, 400),
        (b"caf\xe9", {}, 400),
        (b"x" * 1_000_001, {}, 413),
        (zstandard.ZstdCompressor().compress(b"y\n" * 600_000), {"Content-Encoding": "zstd"}, 413),
    ],
)
def test_sumo_body_errors(
    client: httpx.Client,
    sumo: SumoReceiver,
    body: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    assert client.post(sumo.endpoint, content=body, headers=headers).status_code == status
    assert sumo.store.event_count == 0


def test_sumo_wrong_code(client: httpx.Client, sumo: SumoReceiver) -> None:
    for path in ("/receiver/v1/http/wrong", f"/receiver/v1/http/{SUMO_CODE}x"):
        assert client.post(f"{sumo.url}{path}", content=b"line").status_code == 401
    assert sumo.store.requests == {401: 2}


def test_sumo_splits_long_messages(client: httpx.Client, sumo: SumoReceiver) -> None:
    ascii_line = "a" * 100_000
    wide_line = "é" * 40_000  # 80,000 bytes: the cut must fall between characters
    body = f"{ascii_line}\nshort\n{wide_line}".encode()
    assert client.post(sumo.endpoint, content=body).status_code == 200
    lines = [record["line"] for record in sumo.store.events()]
    assert lines[0] + lines[1] == ascii_line
    assert len(lines[0]) == 65_536
    assert lines[2] == "short"
    assert lines[3] + lines[4] == wide_line
    assert all(len(line.encode()) <= 65_536 for line in lines)
    assert sumo.store.split == 2


# Coralogix.


@pytest.mark.parametrize("path", ["/logs/v1/singles", "/logs/v1/bulk"])
def test_coralogix_accepts(client: httpx.Client, coralogix: CoralogixReceiver, path: str) -> None:
    entries = [
        cx_entry(),
        cx_entry(
            severity=5,
            timestamp=1_700_000_000_123.456,
            computerName="idp-1",
            category="login",
            className="Auth",
            methodName="login",
            threadId="t-1",
            text="",
        ),
    ]
    response = client.post(f"{coralogix.url}{path}", json=entries, headers=CX_HEADERS)
    assert (response.status_code, response.json()) == (200, {})
    response = client.post(
        f"{coralogix.url}{path}",
        content=gzip.compress(orjson.dumps(entries)),
        headers={**CX_HEADERS, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200
    assert coralogix.store.events() == entries + entries


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": CX_KEY},
        {"Authorization": f"Basic {CX_KEY}"},
    ],
)
def test_coralogix_auth_errors(
    client: httpx.Client, coralogix: CoralogixReceiver, headers: dict[str, str]
) -> None:
    response = client.post(f"{coralogix.url}/logs/v1/singles", json=[cx_entry()], headers=headers)
    assert (response.status_code, response.json()) == (401, {"error": "Unauthorized"})


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ({"subsystemName": "auth", "text": "x"}, "applicationName"),
        (cx_entry(applicationName=""), "applicationName"),
        (cx_entry(subsystemName=3), "subsystemName"),
        ({"applicationName": "a", "subsystemName": "b"}, "text"),
        (cx_entry(text={"not": "a string"}), "text"),
        (cx_entry(severity=0), "severity"),
        (cx_entry(severity=7), "severity"),
        (cx_entry(severity="3"), "severity"),
        (cx_entry(severity=True), "severity"),
        (cx_entry(timestamp="2024-01-01"), "timestamp"),
        (cx_entry(timestamp=-1), "timestamp"),
        (cx_entry(computerName=5), "computerName"),
        (cx_entry(threadId=None), "threadId"),
        (cx_entry(subSystemName="typo"), "subSystemName"),
        ("just text", "object"),
    ],
)
def test_coralogix_field_validation(
    client: httpx.Client, coralogix: CoralogixReceiver, entry: Any, needle: str
) -> None:
    response = client.post(
        f"{coralogix.url}/logs/v1/singles", json=[cx_entry(), entry], headers=CX_HEADERS
    )
    assert response.status_code == 400
    reply = response.json()
    assert needle in reply["error"]
    assert reply["index"] == 1
    assert coralogix.store.event_count == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"applicationName": "a"}', 400),
        (b"[{", 400),
        (orjson.dumps([cx_entry(text="x" * 1000)] * 2100), 413),
    ],
)
def test_coralogix_body_errors(
    client: httpx.Client, coralogix: CoralogixReceiver, body: bytes, status: int
) -> None:
    response = client.post(f"{coralogix.url}/logs/v1/singles", content=body, headers=CX_HEADERS)
    assert response.status_code == status
    assert isinstance(response.json()["error"], str)
    assert coralogix.store.event_count == 0
