"""The log platforms as the tests and the fault suite drive them: each platform's local
receiver (which enforces its ingestion contract), the destination settings that point a
connector at it, and where the normalized event sits in what the receiver stored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from tests import leaks
from tests.platform_fakes import (
    CoralogixReceiver,
    DatadogReceiver,
    Receiver,
    SplunkReceiver,
    SumoReceiver,
)
from tests.platform_fakes.webhook import WebhookReceiver
from tests.samples import WEBHOOK_SECRET

DD_API_KEY = "0123456789abcdef0123456789abcdef"
HEC_TOKEN = "12345678-1234-1234-1234-123456789012"
CX_KEY = "cxtp_0123456789abcdefABCDEF"
SUMO_CODE = "ZaVnC4dhaV3secret"
HOOK_KEY = "hk_0123456789abcdef"
leaks.register(DD_API_KEY, HEC_TOKEN, CX_KEY, SUMO_CODE, WEBHOOK_SECRET, HOOK_KEY)


@dataclass(frozen=True)
class Platform:
    name: str
    receiver: Callable[[], Receiver]
    settings: Callable[[Receiver], dict[str, str]]
    event_of: Callable[[Any], dict[str, Any]]  # the normalized event inside a stored entry
    check: Callable[[Any, dict[str, Any]], None]  # platform mapping of one entry


def _splunk_check(entry: dict[str, Any], event: dict[str, Any]) -> None:
    assert entry["sourcetype"] == "authtrail:auth" and entry["source"] == "authtrail"
    assert entry["index"] == "auth" and entry["host"] == "authtrail"
    assert entry["fields"] == {
        "account_id": event["account_id"],
        "event_key": event["event_key"],
        "outcome": event["outcome"],
    }
    assert isinstance(entry["time"], float)


def _sumo_check(entry: dict[str, Any], _event: dict[str, Any]) -> None:
    assert entry["category"] == "prod/auth" and entry["fields"] == "team=iam"


def _webhook_check(entry: dict[str, Any], event: dict[str, Any]) -> None:
    assert entry == event  # the normalized event, as it is


def _cx_check(entry: dict[str, Any], event: dict[str, Any]) -> None:
    assert entry["applicationName"] == "authtrail" and entry["subsystemName"] == "auth"
    assert entry["severity"] == (5 if event["outcome"] == "failure" else 3)
    assert entry["category"] == event["event_key"]


PLATFORMS = [
    Platform(
        "splunk",
        lambda: SplunkReceiver(HEC_TOKEN, indexes={"auth"}),
        lambda r: {
            "url": "https://splunk.example:8088",
            "endpoint": r.url,
            "token": HEC_TOKEN,
            "index": "auth",
        },
        lambda e: e["event"],
        _splunk_check,
    ),
    Platform(
        "sumologic",
        lambda: SumoReceiver(SUMO_CODE),
        lambda r: {
            "url": f"https://collectors.example/receiver/v1/http/{SUMO_CODE}",
            "endpoint": r.url,
            "category": "prod/auth",
            "fields": "team=iam",
        },
        lambda e: orjson.loads(e["line"]),
        _sumo_check,
    ),
    Platform(
        "coralogix",
        lambda: CoralogixReceiver(CX_KEY),
        lambda r: {"api_key": CX_KEY, "endpoint": r.url, "domain": "eu2"},
        lambda e: orjson.loads(e["text"]),
        _cx_check,
    ),
    Platform(
        "webhook",
        lambda: WebhookReceiver([WEBHOOK_SECRET], required_headers={"X-Api-Key": HOOK_KEY}),
        lambda r: {
            "url": r.endpoint,  # type: ignore[attr-defined]
            "secret": WEBHOOK_SECRET,
            "headers": f"X-Api-Key: {HOOK_KEY}",
            # Batches as large as the other platforms': the fault suite's held batch lets
            # at most max_in_flight - 1 batches through behind it.
            "max_events": "1000",
        },
        lambda e: e,
        _webhook_check,
    ),
]


def _datadog_check(entry: dict[str, Any], event: dict[str, Any]) -> None:
    assert entry["ddsource"] == "authtrail" and entry["message"] == event["description"]


DATADOG = Platform(
    "datadog",
    lambda: DatadogReceiver(api_key=DD_API_KEY),
    lambda r: {"api_key": DD_API_KEY, "endpoint": r.url},
    lambda e: e["authtrail"],
    _datadog_check,
)
ALL_PLATFORMS = [DATADOG, *PLATFORMS]


def delivered_ids(platform: Platform, receiver: Receiver) -> list[str]:
    """The event ids ``receiver`` accepted, once per delivery (duplicates included)."""
    return [platform.event_of(e)["event_id"] for e in receiver.store.events()]
