"""The EventBridge connector against moto's server (in-process) and the real broker: events
reach an SQS queue through a bus rule, mapped; per-entry throttling is re-sent and a
MalformedDetail entry dead-lettered; a missing bus pauses the destination (auth_failed)
without loss; an entry over AWS's 256 KB is dead-lettered. moto cannot throttle nor check
entry sizes, so the faults are injected by wrapping the sink's boto3 client. The sink's
unit tests (size rule, encoder, retry logic, client) are tests/unit/test_eventbridge_sink.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.sinks.eventbridge import client as eventbridge_client
from tests.integration.aws import ACCESS_KEY, REGION, SECRET_KEY, Aws
from tests.integration.streaming import Stream, wait_until

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
    make = eventbridge_client.make_client
    monkeypatch.setattr(eventbridge_client, "make_client", lambda s: _Client(make(s), instance))
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
