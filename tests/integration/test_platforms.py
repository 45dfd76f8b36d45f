"""Splunk HEC, Sumo Logic and Coralogix through the same runtime and their receivers (each
enforcing the platform's contract): every event arrives with the platform's mapping, within
its limits; transient faults lose nothing; a refused event is dead-lettered with the
platform's reply; refused credentials pause delivery until they work again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.integration.conftest import consume_all
from tests.integration.platforms import PLATFORMS, Platform, delivered_ids
from tests.integration.streaming import Stream, wait_until
from tests.platform_fakes import Receiver


@pytest.fixture(params=PLATFORMS, ids=[p.name for p in PLATFORMS])
def platform(request: pytest.FixtureRequest) -> Platform:
    chosen: Platform = request.param
    return chosen


@pytest.fixture
def receiver(platform: Platform) -> Iterator[Receiver]:
    with platform.receiver() as running:
        yield running


@pytest.fixture
def stream(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stream]:
    instance = Stream(kafka_bootstrap, tmp_path)
    yield instance
    instance.close()


def add(stream: Stream, platform: Platform, receiver: Receiver) -> str:
    return stream.store.add(platform.name, f"{platform.name} test", platform.settings(receiver)).id


def test_every_event_arrives_mapped_despite_faults(
    stream: Stream, platform: Platform, receiver: Receiver
) -> None:
    destination = add(stream, platform, receiver)
    receiver.faults.throttle(1, retry_after=0.2)
    receiver.faults.fail_next(2, 503)
    stream.start()
    events = stream.produce(1200)
    assert receiver.store.wait_for(1200, timeout=90)
    got = delivered_ids(platform, receiver)
    assert sorted(got) == sorted(e["event_id"] for e in events)  # each once
    by_id = {e["event_id"]: e for e in events}
    for entry in receiver.store.events()[:50]:
        platform.check(entry, by_id[platform.event_of(entry)["event_id"]])
    assert receiver.store.requests.get(413, 0) == 0
    assert wait_until(lambda: stream.status(destination).retries >= 3)


def test_refused_event_dead_lettered_and_credentials_pause(
    stream: Stream, platform: Platform, receiver: Receiver
) -> None:
    destination = add(stream, platform, receiver)
    receiver.faults.reject_marker("POISON-PILL")
    stream.start()
    good = stream.produce(40)
    bad = stream.produce(1, reason="POISON-PILL")
    assert receiver.store.wait_for(40, timeout=60)
    letters = consume_all(
        stream.settings.kafka_bootstrap or "",
        stream.settings.topics.destination_dlq(destination),
        1,
    )
    headers = {k: (v or b"").decode() for k, v in letters[0].headers()}
    assert orjson.loads(letters[0].value())["event_id"] == bad[0]["event_id"]
    assert headers["authtrail-platform"] == platform.name
    assert headers["authtrail-platform-status"] == "400"
    assert sorted(delivered_ids(platform, receiver)) == sorted(e["event_id"] for e in good)

    receiver.faults.reject_marker(None)
    receiver.faults.set_credentials_valid(False)
    later = stream.produce(20)
    assert wait_until(lambda: stream.status(destination).state == "auth_failed")
    receiver.faults.set_credentials_valid(True)
    assert receiver.store.wait_for(60, timeout=60)
    assert {e["event_id"] for e in later} <= set(delivered_ids(platform, receiver))
