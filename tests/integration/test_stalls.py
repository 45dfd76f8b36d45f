"""A destination whose consumer consumes nothing while events wait — librdkafka wedged in a
state it never leaves: its fetches stopped for good, or out of the group with no
partition — is found stalled by the connector runtime's stall watch, shown so (the
worker's status, the status topic the Stream tab and ``/healthz`` read, the metric), told
to the notification channels, and its consumer replaced: every event arrives, and nobody
did anything."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Message
from prometheus_client import CollectorRegistry

from connectors.admin.status import StatusBoard
from connectors.notify.channels import ChannelStore
from connectors.runtime.supervisor import worker_for
from connectors.runtime.worker import DestinationWorker
from schemas.destinations import Destination
from schemas.erasure import ErasureSet
from schemas.settings import Settings
from schemas.standard_webhooks import new_secret
from tests.integration.platforms import DATADOG
from tests.integration.streaming import Stream, wait_until
from tests.platform_fakes import DatadogReceiver
from tests.platform_fakes.webhook import WebhookReceiver


class PausedForGood(DestinationWorker):
    """Once ``wedge`` is set, pauses what it holds and never resumes: it keeps its
    partitions and its group membership, and its fetches return nothing."""

    wedge = threading.Event()

    def _collect(self, consumer: Consumer, max_entries: int) -> list[Message]:
        if self.wedge.is_set():
            consumer.pause(consumer.assignment())
            self._paused = True
        return super()._collect(consumer, max_entries)

    def _resume(self, consumer: Consumer) -> None:
        if not self.wedge.is_set():
            super()._resume(consumer)


class OutOfTheGroup(DestinationWorker):
    """Leaves the group as soon as it joined and never rejoins: no partition, no fetch."""

    def _open_consumer(self) -> Consumer:
        consumer = super()._open_consumer()
        consumer.unsubscribe()
        return consumer


def first_one(
    wedged: type[DestinationWorker],
) -> Callable[[Settings, Destination, Callable[[], ErasureSet] | None], DestinationWorker]:
    """A worker factory whose first worker is ``wedged``; its replacements are ordinary."""
    made: list[DestinationWorker] = []

    def make(
        settings: Settings, destination: Destination, erasures: Callable[[], ErasureSet] | None
    ) -> DestinationWorker:
        worker = (wedged if not made else worker_for)(settings, destination, erasures)
        made.append(worker)
        return worker

    return make


def settings_for(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"st{uuid.uuid4().hex[:8]}.",
        topic_partitions=3,
        connector_stall_seconds=5,
        notification_interval_seconds=1.0,
    )


@pytest.fixture
def datadog() -> Iterator[DatadogReceiver]:
    with DATADOG.receiver() as receiver:
        assert isinstance(receiver, DatadogReceiver)
        yield receiver


def delivered(receiver: DatadogReceiver) -> set[str]:
    return {e["authtrail"]["event_id"] for e in receiver.store.events()}


def stalls_metric(stream: Stream, destination_id: str) -> float:
    registry = CollectorRegistry()
    registry.register(stream.runtime.metrics())
    value = registry.get_sample_value(
        "authtrail_connector_stalls_total",
        {"destination": destination_id, "platform": "datadog"},
    )
    return value or 0.0


def watch_states(
    stream: Stream, destination_id: str, seen: list[str], stop: threading.Event
) -> None:
    """Records every state the runtime shows for the destination, as a page polling
    would, and what ``/healthz`` would name."""
    while not stop.is_set():
        status = stream.status(destination_id)
        if status is not None and (not seen or seen[-1] != status.state):
            seen.append(status.state)
        if destination_id in stream.runtime.health()["stalled"]:  # type: ignore[operator]
            seen.append("healthz:stalled")
        time.sleep(0.05)


def test_fetches_stopped_for_good_are_found_told_and_healed(
    kafka_bootstrap: str, tmp_path: Path, datadog: DatadogReceiver
) -> None:
    settings = settings_for(kafka_bootstrap, tmp_path)
    PausedForGood.wedge.clear()
    stream = Stream(kafka_bootstrap, tmp_path, settings, make_worker=first_one(PausedForGood))
    secret = new_secret()
    seen: list[str] = []
    stop = threading.Event()
    try:
        with WebhookReceiver([secret]) as hook, ChannelStore(settings) as channels:
            channels.add("webhook", "ops", {"url": hook.endpoint, "secret": secret})
            destination_id = stream.add("datadog", DATADOG.settings(datadog))
            stream.start()
            first = stream.produce(20)
            assert datadog.store.wait_for(20, timeout=60)

            def learned() -> bool:  # healthy: the notifier's baseline
                notifier = stream.runtime.notifier
                return notifier is not None and destination_id in notifier.book.known()

            assert wait_until(learned, 60)
            wedged = stream.runtime.workers()[destination_id]
            assert isinstance(wedged, PausedForGood)
            threading.Thread(
                target=watch_states, args=(stream, destination_id, seen, stop), daemon=True
            ).start()
            PausedForGood.wedge.set()
            time.sleep(1.0)  # the wedged worker pauses what it holds
            later = stream.produce(200)
            expected = {e["event_id"] for e in first + later}
            with StatusBoard(settings) as board:
                assert wait_until(lambda: destination_id in board.stalled(time.time()), 60), seen
            assert wait_until(lambda: expected <= delivered(datadog), 90), (
                seen,
                len(delivered(datadog)),
            )
            replacement = stream.runtime.workers()[destination_id]
            assert replacement is not wedged and not isinstance(replacement, PausedForGood)
            assert not wedged.is_alive()
            assert replacement.status.stalls == 1
            assert stalls_metric(stream, destination_id) == 1.0
            assert "no progress for" in (replacement.status.last_error or "")
            assert "holding partitions" in (replacement.status.last_error or "")
            assert wait_until(lambda: replacement.status.state == "healthy", 60), seen
            assert "stalled" in seen and "healthz:stalled" in seen

            def told() -> list[tuple[str, str]]:
                return [
                    (m["previous_state"], m["state"])
                    for m in hook.store.events()
                    if m.get("destination_id") == destination_id
                ]

            assert wait_until(lambda: ("stalled", "healthy") in told(), 60), told()
            assert told()[0] == ("healthy", "stalled")
            message = next(m for m in hook.store.events() if m.get("state") == "stalled")
            assert "no progress for" in (message["last_error"] or "")
    finally:
        stop.set()
        PausedForGood.wedge.clear()
        stream.close()


def test_a_consumer_out_of_the_group_is_replaced(
    kafka_bootstrap: str, tmp_path: Path, datadog: DatadogReceiver
) -> None:
    settings = settings_for(kafka_bootstrap, tmp_path)
    stream = Stream(kafka_bootstrap, tmp_path, settings, make_worker=first_one(OutOfTheGroup))
    seen: list[str] = []
    stop = threading.Event()
    try:
        destination_id = stream.add("datadog", DATADOG.settings(datadog))
        stream.start()
        assert wait_until(lambda: destination_id in stream.runtime.workers(), 30)
        threading.Thread(
            target=watch_states, args=(stream, destination_id, seen, stop), daemon=True
        ).start()
        events = stream.produce(100)
        assert wait_until(lambda: {e["event_id"] for e in events} <= delivered(datadog), 90), seen
        replacement = stream.runtime.workers()[destination_id]
        assert not isinstance(replacement, OutOfTheGroup)
        assert replacement.status.stalls == 1
        assert "holding no partition" in (replacement.status.last_error or "")
        assert wait_until(lambda: replacement.status.state == "healthy", 60), seen
        assert seen.index("stalled") < len(seen) - 1
    finally:
        stop.set()
        stream.close()


def test_no_stall_while_idle_or_failing(
    kafka_bootstrap: str, tmp_path: Path, datadog: DatadogReceiver
) -> None:
    """Nothing waiting (caught up), or a platform failing (the worker retries and says
    so): no stall, no replacement, however long."""
    settings = settings_for(kafka_bootstrap, tmp_path)
    stream = Stream(kafka_bootstrap, tmp_path, settings)
    try:
        destination_id = stream.add("datadog", DATADOG.settings(datadog))
        stream.start()
        stream.produce(10)
        assert datadog.store.wait_for(10, timeout=60)
        worker = stream.runtime.workers()[destination_id]
        time.sleep(settings.connector_stall_seconds * 2 + 1)  # caught up: idle is fine
        datadog.faults.fail_next(10**6, 503)
        stream.produce(50)
        assert wait_until(lambda: worker.status.state == "failing", 60)
        time.sleep(settings.connector_stall_seconds * 2 + 1)
        assert stream.runtime.workers()[destination_id] is worker
        assert worker.status.stalls == 0 and worker.status.state == "failing"
        datadog.faults.clear()
        assert datadog.store.wait_for(60, timeout=60)
        assert stream.runtime.workers()[destination_id] is worker
    finally:
        stream.close()
