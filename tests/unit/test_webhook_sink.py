"""The webhook sink on its own: framing and limits from the settings, the extra headers,
signatures the reference library verifies, ids stable per batch, 410 as a stop; and the
settings: headers' values write-only, rotation with a grace period."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from connectors.sinks import build_sink
from connectors.sinks.base import encode_event
from connectors.sinks.http import frame
from connectors.sinks.webhook import WebhookSink
from schemas.destinations import DestinationError, make_destination
from schemas.platforms import WebhookSettings
from schemas.standard_webhooks import new_secret
from tests.samples import VALID_SETTINGS, WEBHOOK_SECRET

EVENT = {"event_id": "e1", "event_key": "login.failed", "outcome": "failure"}


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    made = build_sink(make_destination("webhook", "t", VALID_SETTINGS["webhook"]))
    assert isinstance(made, WebhookSink)
    yield made
    made.close()


def test_settings_shape_the_requests(sink: WebhookSink) -> None:
    assert sink.url == "https://hooks.example/authtrail"
    assert sink.headers == {
        "X-Api-Key": "hk_0123456789abcdef",
        "Content-Type": "application/x-ndjson",
    }
    assert sink.framing == "lines" and sink.limits.gzip is False
    assert (sink.limits.max_entries, sink.limits.max_bytes) == (100, 1_048_576)
    array = build_sink(
        make_destination(
            "webhook",
            "t",
            {
                **VALID_SETTINGS["webhook"],
                "format": "json_array",
                "max_events": "7",
                "max_bytes": "65536",
            },
        )
    )
    assert isinstance(array, WebhookSink)
    assert array.framing == "json_array" and array.headers["Content-Type"] == "application/json"
    assert (array.limits.max_entries, array.limits.max_bytes) == (7, 65_536)
    assert array.encode(*_head(EVENT)) == orjson.dumps(EVENT)  # the event as it is


def _head(event: dict[str, object]) -> tuple[object, bytes]:
    from connectors.sinks.base import read_event

    raw = orjson.dumps(event)
    return read_event(raw), raw


def test_requests_are_signed_and_ids_stable_per_batch(sink: WebhookSink) -> None:
    body = frame(
        [encode_event(sink, EVENT), encode_event(sink, {**EVENT, "event_id": "e2"})], "lines"
    )
    first = sink.request_headers(body)
    Webhook(WEBHOOK_SECRET).verify(body, first, json_parse=False)  # NDJSON: not one document
    assert sink.request_headers(body)["webhook-id"] == first["webhook-id"]
    assert sink.request_headers(body + b"\n")["webhook-id"] != first["webhook-id"]
    assert abs(int(first["webhook-timestamp"]) - time.time()) < 60


def test_gone_is_a_stop_other_statuses_the_generic_rules(sink: WebhookSink) -> None:
    def reply(status: int) -> str:
        return sink.classify(httpx.Response(status, request=httpx.Request("POST", sink.url))).kind

    assert reply(410) == "auth"
    assert (reply(204), reply(429), reply(503), reply(413), reply(401), reply(422)) == (
        "ok",
        "retry",
        "retry",
        "too_large",
        "auth",
        "invalid",
    )


def test_rotation_signs_with_both_until_the_grace_ends() -> None:
    settings = WebhookSettings.model_validate(
        {"url": "https://h.example/in", "secret": WEBHOOK_SECRET}
    )
    rotated = settings.rotated(now=1000.0, grace_s=60)
    new = rotated.secret.get_secret_value()
    assert new != WEBHOOK_SECRET
    assert rotated.signing_secrets(1000.0) == [new, WEBHOOK_SECRET]
    assert rotated.signing_secrets(1061.0) == [new]
    again = rotated.rotated(now=2000.0, grace_s=0, secret=new_secret())
    assert again.previous_secrets is None  # the expired one is dropped; no grace: none kept
    with pytest.raises(ValueError, match="30 days"):
        settings.rotated(now=0.0, grace_s=31 * 86_400)
    with pytest.raises(ValueError, match="whsec_"):
        settings.rotated(now=0.0, grace_s=0, secret="plain")


def test_generated_secret_headers_and_their_errors() -> None:
    made = make_destination(
        "webhook", "t", {"url": "https://h.example/in", "headers.X-Token": "abc"}
    )
    assert made.generated_secrets({"url": "https://h.example/in"})["secret"].startswith("whsec_")
    assert made.redacted_settings()["headers"] == {"X-Token": "••••"}
    for headers, message in (
        ("Content-Type: text/plain", "set by authtrail"),
        ("webhook-signature: x", "set by authtrail"),
        ("Bad Name: x", "HTTP token"),
        ("X-Ok: line\\u0001", "control"),
        ("no colon", "Name: value"),
    ):
        with pytest.raises(DestinationError, match=message) as refused:
            make_destination(
                "webhook",
                "t",
                {"url": "https://h.example/in", "headers": headers.replace("\\u0001", "\x01")},
            )
        assert refused.value.field == "headers"
    with pytest.raises(DestinationError, match="24 to 64 bytes") as short:
        make_destination(
            "webhook", "t", {"url": "https://h.example/in", "secret": "whsec_c2hvcnQ="}
        )
    assert short.value.field == "secret" and "c2hvcnQ" not in str(short.value)
