"""Connector consumers against the real broker and the Datadog receiver (which enforces the
platform's contract): mapping, transient faults without loss, a poison event dead-lettered
with the platform's reply, refused credentials that pause and resume, filters, pause and
resume, and one destination down while another keeps flowing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from connectors.runtime.supervisor import ConnectorRuntime
from tests.integration.conftest import consume_all
from tests.integration.streaming import Stream, wait_until
from tests.platform_fakes import DatadogReceiver

API_KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def stream(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stream]:
    instance = Stream(kafka_bootstrap, tmp_path)
    yield instance
    instance.close()


@pytest.fixture
def datadog() -> Iterator[DatadogReceiver]:
    with DatadogReceiver(api_key=API_KEY) as receiver:
        yield receiver


def add_datadog(stream: Stream, receiver: DatadogReceiver, **extra: str) -> str:
    return stream.add("datadog", {"api_key": API_KEY, "endpoint": receiver.url, **extra})


def ids(receiver: DatadogReceiver) -> list[str]:
    return [e["authtrail"]["event_id"] for e in receiver.store.events()]


def test_every_event_arrives_mapped(stream: Stream, datadog: DatadogReceiver) -> None:
    add_datadog(stream, datadog, tags="team:iam")
    stream.start()
    events = stream.produce(2500)
    assert datadog.store.wait_for(2500, timeout=60)
    assert set(ids(datadog)) == {e["event_id"] for e in events}
    entry = next(
        e for e in datadog.store.events() if e["authtrail"]["event_id"] == events[0]["event_id"]
    )
    assert entry["message"] == "Login failed"
    assert entry["ddsource"] == "authtrail" and entry["service"] == "authtrail"
    assert entry["status"] == "warn"
    assert entry["ddtags"] == "account:acc_0,event:login.failed,outcome:failure,team:iam"
    assert entry["timestamp"] == int(datetime(2026, 11, 26, 12, tzinfo=UTC).timestamp() * 1000)
    assert datadog.store.requests.get(413, 0) == 0  # never over the 1,000-entry limit


def test_transient_faults_lose_nothing(stream: Stream, datadog: DatadogReceiver) -> None:
    destination = add_datadog(stream, datadog)
    datadog.faults.throttle(2, retry_after=0.3)
    datadog.faults.fail_next(3, 503)
    stream.start()
    events = stream.produce(300)
    assert datadog.store.wait_for(300, timeout=60)
    assert set(ids(datadog)) == {e["event_id"] for e in events}
    assert wait_until(lambda: stream.status(destination).retries >= 5)
    assert datadog.store.requests.get(429, 0) == 2


def test_poison_event_is_dead_lettered_the_rest_delivered(
    stream: Stream, datadog: DatadogReceiver
) -> None:
    destination = add_datadog(stream, datadog)
    datadog.faults.reject_marker("POISON-PILL")
    stream.start()
    good = stream.produce(99)
    bad = stream.produce(1, reason="POISON-PILL")
    assert datadog.store.wait_for(99, timeout=60)
    letters = consume_all(
        stream.settings.kafka_bootstrap or "",
        stream.settings.topics.destination_dlq(destination),
        1,
    )
    headers = {k: (v or b"").decode() for k, v in letters[0].headers()}
    assert orjson.loads(letters[0].value())["event_id"] == bad[0]["event_id"]
    assert headers["authtrail-platform"] == "datadog"
    assert headers["authtrail-platform-status"] == "400"
    assert "refused by the platform" in headers["authtrail-reason"]
    assert set(ids(datadog)) == {e["event_id"] for e in good}
    assert wait_until(lambda: stream.status(destination).dead_lettered == 1)


def test_refused_credentials_pause_then_resume(stream: Stream, datadog: DatadogReceiver) -> None:
    destination = add_datadog(stream, datadog)
    datadog.faults.set_credentials_valid(False)
    stream.start()
    events = stream.produce(50)
    assert wait_until(
        lambda: (
            stream.status(destination) is not None
            and stream.status(destination).state == "auth_failed"
        )
    )
    assert datadog.store.events() == []
    datadog.faults.set_credentials_valid(True)
    assert datadog.store.wait_for(50, timeout=60)
    assert set(ids(datadog)) == {e["event_id"] for e in events}
    assert wait_until(lambda: stream.status(destination).state == "healthy")


def test_filter_pause_and_resume(stream: Stream, datadog: DatadogReceiver) -> None:
    destination = add_datadog(stream, datadog, **{"filter.outcomes": "failure"})
    stream.start()
    events = stream.produce(90)
    failures = {e["event_id"] for e in events if e["outcome"] == "failure"}
    assert datadog.store.wait_for(len(failures), timeout=60)
    assert wait_until(lambda: stream.status(destination).filtered == 60)
    assert set(ids(datadog)) == failures
    stream.store.set_paused(destination, True)
    assert wait_until(lambda: destination not in stream.runtime.workers())
    later = stream.produce(30, outcome="failure")
    time.sleep(1.0)
    assert len(datadog.store.events()) == len(failures)
    stream.store.set_paused(destination, False)
    assert datadog.store.wait_for(len(failures) + 30, timeout=60)
    assert {e["event_id"] for e in later} <= set(ids(datadog))


def test_one_destination_down_does_not_hold_back_another(
    stream: Stream, datadog: DatadogReceiver
) -> None:
    with DatadogReceiver(api_key=API_KEY) as other:
        add_datadog(stream, datadog)
        add_datadog(stream, other)
        datadog.down()
        stream.start()
        events = stream.produce(200)
        assert other.store.wait_for(200, timeout=60)
        assert datadog.store.events() == []
        datadog.up()
        assert datadog.store.wait_for(200, timeout=90)
        assert set(ids(datadog)) == set(ids(other)) == {e["event_id"] for e in events}


def test_two_replicas_share_a_destination(stream: Stream, datadog: DatadogReceiver) -> None:
    destination = add_datadog(stream, datadog)
    second = ConnectorRuntime(stream.settings)
    thread = threading.Thread(target=second.run, daemon=True)
    stream.start()
    thread.start()
    try:

        def shared() -> bool:
            workers = [r.workers().get(destination) for r in (stream.runtime, second)]
            return all(w is not None and w.status.partitions for w in workers)

        assert wait_until(shared, timeout=60)  # both replicas own partitions
        events = stream.produce(3000)
        assert datadog.store.wait_for(3000, timeout=90)
        assert set(ids(datadog)) == {e["event_id"] for e in events}

        def shares() -> list[int]:
            return [r.workers()[destination].status.delivered for r in (stream.runtime, second)]

        # A batch is counted once its commit is done, a moment after the platform has it.
        assert wait_until(lambda: sum(shares()) >= 3000, timeout=30), shares()
        assert all(share > 0 for share in shares()), shares()
    finally:
        second.stop()
        thread.join(60)


def test_kill_9_mid_stream_loses_nothing(
    stream: Stream, datadog: DatadogReceiver, tmp_path: Path
) -> None:
    import signal
    import subprocess

    from tests.integration.conftest import AUTHTRAIL, base_env

    add_datadog(stream, datadog)
    env = base_env(
        stream.settings.data_dir,
        AUTHTRAIL_KAFKA_BOOTSTRAP=stream.settings.kafka_bootstrap or "",
        AUTHTRAIL_TOPIC_PREFIX=stream.settings.topic_prefix,
    )
    datadog.faults.set_delay(0.5)  # slow enough to be killed mid-stream
    events = stream.produce(6000)
    log = (tmp_path / "connectors.log").open("ab")
    first = subprocess.Popen(
        [AUTHTRAIL, "connectors", "run"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    assert wait_until(lambda: len(datadog.store.events()) >= 1500, timeout=60)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert len(set(ids(datadog))) < len(events)  # killed mid-stream indeed
    datadog.faults.set_delay(0)
    second = subprocess.Popen(
        [AUTHTRAIL, "connectors", "run"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    metrics_url = f"http://127.0.0.1:{env['AUTHTRAIL_METRICS_PORT']}/metrics"

    seen = [""]

    def healthy() -> bool:
        try:
            seen[0] = text = httpx.get(metrics_url).text
        except httpx.HTTPError:
            return False
        return "authtrail_connector_delivered_total{" in text and 'state="healthy"} 1.0' in text

    try:
        assert wait_until(lambda: {e["event_id"] for e in events} <= set(ids(datadog)), timeout=120)
        # The killed replica still holds its partitions until its session times out.
        assert wait_until(healthy, timeout=120), seen[0]
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0
    received = ids(datadog)
    duplicates = len(received) - len(set(received))
    # At most what was not committed at the kill: the batches in flight and the one whose
    # (asynchronous) commit may not have reached the broker.
    in_flight = stream.settings.connector_max_in_flight
    assert duplicates <= (in_flight + 1) * 1000


def test_status_shows_state_lag_and_counts(stream: Stream, datadog: DatadogReceiver) -> None:
    from tests.integration.conftest import base_env, run_cli

    destination = add_datadog(stream, datadog, **{"filter.outcomes": "success"})
    stream.start()
    events = stream.produce(120)
    successes = sum(e["outcome"] == "success" for e in events)
    assert datadog.store.wait_for(successes, timeout=60)
    env = base_env(
        stream.settings.data_dir,
        AUTHTRAIL_KAFKA_BOOTSTRAP=stream.settings.kafka_bootstrap or "",
        AUTHTRAIL_TOPIC_PREFIX=stream.settings.topic_prefix,
    )

    def status() -> dict[str, Any]:
        result = run_cli(env, "destinations", "status", destination, "--json")
        assert result.returncode == 0, result.stderr
        rows: list[dict[str, Any]] = orjson.loads(result.stdout)
        return rows[0]

    assert wait_until(lambda: status()["delivered"] == successes, timeout=30)
    row = status()
    assert (row["state"], row["lag"], row["replicas"]) == ("healthy", 0, 1)
    assert row["filtered"] == 120 - successes and row["dead_lettered"] == 0
    assert API_KEY not in orjson.dumps(row).decode()
    stream.store.set_paused(destination, True)
    assert wait_until(lambda: status()["state"] == "paused", timeout=30)
    stream.produce(10)
    assert wait_until(lambda: status()["lag"] == 10, timeout=30)


def committed(stream: Stream, destination: str) -> dict[int, int]:
    """The destination group's committed offset per partition (negative: none)."""
    group = f"authtrail.connector.{destination}"
    consumer = Consumer({"bootstrap.servers": stream.settings.kafka_bootstrap, "group.id": group})
    try:
        partitions = [TopicPartition(stream.settings.topics.normalized, p) for p in range(3)]
        return {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
    finally:
        consumer.close()


def held_offset(stream: Stream, event_id: str, total: int) -> tuple[int, int]:
    """(partition, offset) of the event in the normalized topic."""
    topic = stream.settings.topics.normalized
    for record in consume_all(stream.settings.kafka_bootstrap or "", topic, total):
        if orjson.loads(record.value())["event_id"] == event_id:
            return record.partition(), record.offset()
    raise AssertionError(f"{event_id} is not in the topic")


def stopped(stream: Stream, destination: str) -> bool:
    status = stream.status(destination)
    return status is None or status.state in ("stopped", "paused")


@pytest.mark.parametrize("interruption", ["pause", "edit", "remove"])
def test_an_interrupted_retry_holds_the_batches_after_it(
    stream: Stream, datadog: DatadogReceiver, interruption: str
) -> None:
    """The platform refuses (503) every request holding one event and accepts the rest:
    its batch is retried while the batches after it are delivered. The destination is then
    paused, edited or removed mid-retry: no commit may pass the held event, and once the
    platform recovers every event arrives."""
    destination = add_datadog(stream, datadog)
    datadog.faults.unavailable_for("HELD-BY-THE-OUTAGE")
    stream.start()
    before = stream.produce(3000)
    held = stream.produce(1, reason="HELD-BY-THE-OUTAGE")[0]
    after = stream.produce(9000)
    later = {e["event_id"] for e in after}
    # The held batch is never accepted, so an event of `after` delivered came in a batch
    # read after it.
    assert wait_until(lambda: bool(later & set(ids(datadog))), timeout=90)
    assert wait_until(lambda: stream.status(destination).retries >= 2)
    assert held["event_id"] not in set(ids(datadog))
    worker = stream.runtime.workers()[destination]
    if interruption == "pause":
        stream.store.set_paused(destination, True)
    elif interruption == "edit":
        current = stream.store.require(destination)
        stream.store.replace(current.model_copy(update={"name": "edited mid-retry"}))
    else:
        stream.store.remove(destination)
    assert wait_until(lambda: not worker.is_alive(), timeout=60), "the retry did not stop"
    time.sleep(2)  # whatever the stop committed has reached the broker
    partition, offset = held_offset(stream, held["event_id"], 12001)
    assert committed(stream, destination)[partition] <= offset, "a commit passed the held event"
    if interruption == "remove":
        return
    datadog.faults.unavailable_for(None)
    if interruption == "pause":
        stream.store.set_paused(destination, False)
    wanted = {e["event_id"] for e in [*before, held, *after]}
    assert wait_until(lambda: wanted <= set(ids(datadog)), timeout=150)


def test_a_retry_after_holds_every_request_of_the_destination(
    stream: Stream, datadog: DatadogReceiver
) -> None:
    """Four batches in flight; the platform answers one request (not the oldest batch's)
    429 with Retry-After: 2, and the three after it 503 without one. No request of that
    destination may arrive until the two seconds have passed: not the other batches'
    retries either (requests already on the wire when the 429 left excepted: a grace of a
    fifth of a second)."""
    add_datadog(stream, datadog)
    stream.start()
    stream.produce(3000)
    assert datadog.store.wait_for(3000, timeout=60)
    datadog.faults.pass_next(2)
    datadog.faults.throttle(1, retry_after=2)
    datadog.faults.fail_next(3, 503)
    events = stream.produce(8000)
    assert wait_until(lambda: set(ids(datadog)) >= {e["event_id"] for e in events}, timeout=90)
    answers = datadog.store.answers
    throttled = [answered for _, answered, status in answers if status == 429]
    assert len(throttled) == 1
    inside = [
        arrived - throttled[0]
        for arrived, _, _ in answers
        if throttled[0] + 0.2 < arrived < throttled[0] + 2.0
    ]
    assert not inside, f"requests {inside} s after the 429 with Retry-After: 2"
