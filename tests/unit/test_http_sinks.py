"""Each HTTP sink on its own: where it sends (URL and headers from the settings), what an
event becomes (its encoder), how a batch is framed, and how each reply is classified (its
retry logic), with real httpx responses and no network. The platforms' own receivers
(``tests/platform_fakes``) check the same end to end."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from connectors.sinks import build_sink
from connectors.sinks.base import encode_event, read_event
from connectors.sinks.http import HttpSink, classify_status, frame
from connectors.sinks.splunk import classify as splunk_classify
from schemas.destinations import make_destination
from tests.samples import VALID_SETTINGS

EVENT: dict[str, Any] = {
    "event_id": "e1",
    "event_key": "login.failed",
    "description": "Failed login",
    "outcome": "failure",
    "occurred_at": "2026-11-26T12:45:03.120Z",
    "account_id": "acc_1",
    "ip": "81.2.69.10",
}
HTTP_PLATFORMS = ["datadog", "splunk", "sumologic", "coralogix"]


@pytest.fixture(params=HTTP_PLATFORMS)
def sink(request: pytest.FixtureRequest) -> Iterator[HttpSink]:
    made = build_sink(make_destination(request.param, "t", VALID_SETTINGS[request.param]))
    assert isinstance(made, HttpSink)
    yield made
    made.close()


def test_where_each_platform_sends() -> None:
    def made(platform: str, **extra: str) -> HttpSink:
        sink = build_sink(make_destination(platform, "t", {**VALID_SETTINGS[platform], **extra}))
        assert isinstance(sink, HttpSink)
        return sink

    datadog = made("datadog")
    assert datadog.url == "https://http-intake.logs.datadoghq.eu/api/v2/logs"
    assert datadog.headers["DD-API-KEY"] == VALID_SETTINGS["datadog"]["api_key"]
    assert made("datadog", endpoint="http://127.0.0.1:1").url == "http://127.0.0.1:1/api/v2/logs"
    splunk = made("splunk")
    assert splunk.url == "https://splunk.example:8088/services/collector/event"
    assert splunk.headers["Authorization"].startswith("Splunk ")
    assert "X-Splunk-Request-Channel" in splunk.headers  # indexer_ack is on in the sample
    sumo = made("sumologic", endpoint="http://127.0.0.1:2")
    assert sumo.url == "http://127.0.0.1:2/receiver/v1/http/ZaVnC4dhaV3"
    assert sumo.headers["X-Sumo-Category"] == "prod/auth"
    assert sumo.headers["X-Sumo-Fields"] == "team=iam,env=prod"
    coralogix = made("coralogix")
    assert coralogix.url == "https://ingress.eu2.coralogix.com/logs/v1/singles"
    assert coralogix.headers["Authorization"].startswith("Bearer cxtp_")
    assert made("splunk", verify_tls="false").verify_tls is False


def test_each_encoder_keeps_the_event_and_its_envelope(sink: HttpSink) -> None:
    entry = orjson.loads(encode_event(sink, EVENT))
    if sink.platform == "datadog":
        assert entry["authtrail"] == EVENT and entry["status"] == "warn"
        assert entry["ddtags"].startswith("account:acc_1,event:login.failed,outcome:failure")
        assert entry["timestamp"] == 1_795_697_103_120
    elif sink.platform == "splunk":
        assert entry["event"] == EVENT and entry["index"] == "auth"
        assert entry["fields"] == {
            "account_id": "acc_1",
            "event_key": "login.failed",
            "outcome": "failure",
        }
    elif sink.platform == "sumologic":
        assert entry == EVENT
    else:
        assert orjson.loads(entry["text"]) == EVENT and entry["severity"] == 5
        assert entry["category"] == "login.failed"
    head = read_event(orjson.dumps(EVENT))
    assert head.occurred_seconds() == pytest.approx(1_795_697_103.12)


def test_framing_matches_each_platforms_contract(sink: HttpSink) -> None:
    entries = [encode_event(sink, EVENT), encode_event(sink, {**EVENT, "event_id": "e2"})]
    body = frame(entries, sink.framing)
    if sink.platform in ("datadog", "coralogix"):
        assert [e["event_id"] for e in _ids(orjson.loads(body), sink.platform)] == ["e1", "e2"]
    else:
        lines = [orjson.loads(line) for line in body.split(b"\n")]
        assert [e["event_id"] for e in _ids(lines, sink.platform)] == ["e1", "e2"]
    assert sink.limits.gzip == (sink.platform != "coralogix")
    assert gzip.decompress(gzip.compress(body)) == body


def _ids(entries: list[dict[str, Any]], platform: str) -> list[dict[str, Any]]:
    key = {"datadog": "authtrail", "splunk": "event", "sumologic": None, "coralogix": "text"}
    field = key[platform]
    if field is None:
        return entries
    return [orjson.loads(e[field]) if isinstance(e[field], str) else e[field] for e in entries]


def response(status: int, body: Any = b"", **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.Response(status, content=content, headers=headers)


@pytest.mark.parametrize(
    ("status", "headers", "kind", "retry_after"),
    [
        (200, {}, "ok", None),
        (202, {}, "ok", None),
        (408, {}, "retry", None),
        (429, {"Retry-After": "7"}, "retry", 7.0),
        (500, {}, "retry", None),
        (503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, "retry", 0.0),
        (413, {}, "too_large", None),
        (401, {}, "auth", None),
        (403, {}, "auth", None),
        (400, {}, "invalid", None),
        (422, {}, "invalid", None),
    ],
)
def test_the_generic_retry_logic(
    status: int, headers: dict[str, str], kind: str, retry_after: float | None
) -> None:
    result = classify_status(response(status, b"reply text", **headers))
    assert result.kind == kind
    assert result.retry_after == retry_after
    assert result.reply.status == status and result.reply.message == "reply text"


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (200, 0, "ok"),
        (200, 17, "ok"),  # HEC is healthy (the health endpoint)
        (503, 9, "retry"),  # server busy
        (500, 8, "retry"),  # internal error
        (401, 2, "auth"),
        (403, 4, "auth"),
        (400, 6, "invalid"),  # invalid data format
        (400, 12, "invalid"),
        (413, 6, "too_large"),  # the status decides: split
    ],
)
def test_splunks_retry_logic_reads_hec_codes(status: int, code: int, kind: str) -> None:
    result = splunk_classify(response(status, {"code": code, "text": "said"}))
    assert result.kind == kind
    if kind != "too_large":
        assert result.reply.code == str(code)


def test_a_sink_refuses_another_platforms_destination() -> None:
    from connectors.sinks.datadog import DatadogSink

    with pytest.raises(TypeError, match="datadog sink built for a splunk destination"):
        DatadogSink(make_destination("splunk", "t", VALID_SETTINGS["splunk"]))
