"""PII rules end to end: a Datadog and a Splunk destination with rules, events full of
personal data through the connectors, and no clear value anywhere in what the receivers
got; pseudonyms stable within a destination and unrelated across the two. The test event
and a redrive go through the same rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from connectors.admin.dead_letters import redrive
from connectors.admin.sample_event import send_test_event
from tests.integration.platforms import DATADOG, PLATFORMS
from tests.integration.streaming import Stream, wait_until
from tests.platform_fakes import DatadogReceiver, SplunkReceiver

SPLUNK = next(p for p in PLATFORMS if p.name == "splunk")
RULES = {
    "transform.actor.email": "hash",
    "transform.actor.id": "mask",
    "transform.ip": "mask",
    "transform.user_agent": "drop",
    "transform.account.name": "hash",
    "transform.attributes.phone": "hash",
    "transform.attributes.device.serial": "drop",
}
CLEAR = [
    b"ana@acme.io",
    b"usr_1",
    b"99.81.198.187",
    b"Secret-Agent/1.0",
    b"Account ",
    b"+353 85 123 4567",
    b"SN-99-1234",
]
PII = {
    "actor_email": "ana@acme.io",
    "actor_display": "ana@acme.io",
    "actor_id": "usr_1",
    "ip": "99.81.198.187",
    "user_agent": "Secret-Agent/1.0",
    "attributes": {"phone": "+353 85 123 4567", "device": {"serial": "SN-99-1234"}},
    "raw": '{"actor":{"email":"ana@acme.io","id":"usr_1"},"ip":"99.81.198.187"}',
}


@pytest.fixture
def stream(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stream]:
    instance = Stream(kafka_bootstrap, tmp_path)
    yield instance
    instance.close()


def test_no_clear_value_reaches_datadog_or_splunk(stream: Stream) -> None:
    with DATADOG.receiver() as datadog, SPLUNK.receiver() as splunk:
        assert isinstance(datadog, DatadogReceiver) and isinstance(splunk, SplunkReceiver)
        to_datadog = stream.add("datadog", {**DATADOG.settings(datadog), **RULES})
        to_splunk = stream.add("splunk", {**SPLUNK.settings(splunk), **RULES})
        stream.start()
        events = stream.produce(60, **PII)
        assert datadog.store.wait_for(60, timeout=90)
        assert splunk.store.wait_for(60, timeout=90)
        pseudonyms = {}
        for receiver, platform in ((datadog, DATADOG), (splunk, SPLUNK)):
            body = orjson.dumps(receiver.store.events())
            for clear in CLEAR:
                assert clear not in body, f"{clear!r} reached {platform.name}"
            sent = [platform.event_of(entry) for entry in receiver.store.events()]
            assert sorted(e["event_id"] for e in sent) == sorted(e["event_id"] for e in events)
            assert {e["actor_email"] for e in sent} == {sent[0]["actor_email"]}  # stable
            assert {e["ip"] for e in sent} == {"99.81.0.0/16"}
            assert {e["actor_id"] for e in sent} == {"u***"}
            assert all("user_agent" not in e and "raw" not in e for e in sent)
            assert all(e["attributes"]["device"] == {} for e in sent)
            pseudonyms[platform.name] = sent[0]["actor_email"]
        # One user, one pseudonym per destination, unrelated across destinations.
        assert pseudonyms["datadog"] != pseudonyms["splunk"]
        assert len(pseudonyms["datadog"]) == 64

        # The test event and a redrive go through the same rules.
        datadog.store.reset()
        destination = stream.store.require(to_datadog)
        assert send_test_event(destination).ok
        assert wait_until(lambda: datadog.store.event_count == 1)
        assert DATADOG.event_of(datadog.store.events()[0])["actor_id"] == "a***"  # "authtrail"
        splunk.faults.reject_marker("POISON-PILL")
        stream.produce(1, reason="POISON-PILL", **PII)
        assert wait_until(lambda: (stream.status(to_splunk).dead_lettered or 0) == 1, 60)
        splunk.faults.reject_marker(None)
        splunk.store.reset()
        result = redrive(stream.settings, stream.store.require(to_splunk))
        assert result.delivered == 1
        body = orjson.dumps(splunk.store.events())
        for clear in CLEAR:
            assert clear not in body
