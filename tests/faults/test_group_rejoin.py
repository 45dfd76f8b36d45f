"""A broker restart must not cost a destination its group membership: a consumer that has
to join its group again after an outage is one lost JoinGroup away from standing still
(librdkafka waits max.poll.interval.ms + 3 s for the answer), while its status says
healthy. The scenario that stalled destinations in CI, on demand: one destination's
connector on a broker of its own behind a proxy that drops the next JoinGroup the
connector sends; the broker stops for ``OUTAGE_S`` (longer than a 15 s session, as in
the fault suite's row) and comes back; every event must reach the platform within
``RESUME_WITHIN_S`` of the broker answering again. With the 15 s session the connectors
had, the session expired, the JoinGroup was lost, and the destination stood still until
the old 60 s rejoin rule (ten minutes without it)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from authtrail.kafka_local import LocalKafka
from connectors.config import DestinationStore
from connectors.runtime.supervisor import ConnectorRuntime
from infra.kafka.topic_admin import ensure_topics
from schemas.settings import Settings
from tests.faults.kafka_proxy import KafkaProxy
from tests.integration.conftest import free_port
from tests.integration.platforms import DATADOG
from tests.integration.streaming import normalized_event
from tests.platform_fakes import DatadogReceiver

OUTAGE_S = 12.0
RESUME_WITHIN_S = 30.0


@dataclass
class ProxiedBroker:
    kafka: LocalKafka
    proxy: KafkaProxy
    bootstrap: str


@pytest.fixture(scope="module")
def proxied_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxiedBroker]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("proxied-kafka"),
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
    )
    proxy = KafkaProxy(free_port(), settings.kafka_port)
    kafka = LocalKafka(settings, advertised_port=proxy.port)
    kafka.start()
    yield ProxiedBroker(kafka, proxy, f"127.0.0.1:{proxy.port}")
    kafka.stop()
    proxy.close()


def test_a_lost_join_group_after_a_broker_restart_does_not_stall(
    proxied_broker: ProxiedBroker, tmp_path: Path
) -> None:
    broker = proxied_broker
    settings = Settings(
        data_dir=tmp_path,
        kafka_bootstrap=broker.bootstrap,
        topic_prefix=f"rj{uuid.uuid4().hex[:8]}.",
        topic_partitions=3,
        connector_linger_seconds=0.2,
    )
    ensure_topics(settings)
    producer = Producer({**settings.kafka_client_config(), "message.timeout.ms": 300_000})

    def produce(count: int) -> set[str]:
        events = [normalized_event(i) for i in range(count)]
        for event in events:
            producer.produce(settings.topics.normalized, value=orjson.dumps(event))
        assert producer.flush(120) == 0
        return {e["event_id"] for e in events}

    with DATADOG.receiver() as datadog, DestinationStore(settings) as store:
        assert isinstance(datadog, DatadogReceiver)
        destination = store.add("datadog", "behind a proxy", DATADOG.settings(datadog))
        runtime = ConnectorRuntime(settings, only=[destination.id])
        thread = threading.Thread(target=runtime.run, daemon=True)
        thread.start()
        try:

            def delivered() -> set[str]:
                return {e["authtrail"]["event_id"] for e in datadog.store.events()}

            def state() -> str:
                worker = runtime.workers().get(destination.id)
                return "none" if worker is None else f"{worker.status}"

            expected = produce(200)
            deadline = time.monotonic() + 60
            while not expected <= delivered():
                assert time.monotonic() < deadline, state()
                time.sleep(0.2)
            broker.proxy.drop_next_join_of(f"authtrail-connector-{destination.id}")
            broker.kafka.stop()
            broker.proxy.sever()
            time.sleep(OUTAGE_S)
            broker.kafka.start()
            back = time.monotonic()
            expected |= produce(200)
            while not expected <= delivered():
                waited = time.monotonic() - back
                assert waited < RESUME_WITHIN_S, (
                    f"{len(expected - delivered())} events not delivered {waited:.0f} s after "
                    f"the broker came back (JoinGroups dropped: {broker.proxy.dropped}); "
                    f"worker: {state()}"
                )
                time.sleep(0.2)
        finally:
            runtime.stop()
            thread.join(60)
