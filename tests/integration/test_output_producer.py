"""``pipeline.outputs.OutputProducer`` against the real broker: ``deliver`` returns only
when every record is acknowledged, and raises when any is not, although successful
records produce no delivery report (``delivery.report.only.error``)."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from pipeline.outputs import DeliveryError, OutputProducer, OutRecord
from tests.integration.conftest import consume_all


def test_deliver_returns_once_every_record_is_acknowledged(kafka_bootstrap: str) -> None:
    topic = f"outputs-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    producer = OutputProducer({"bootstrap.servers": kafka_bootstrap}, "test-outputs")
    try:
        producer.deliver(
            [OutRecord(topic, f"v{i}".encode(), f"k{i % 7}".encode()) for i in range(5000)]
        )
    finally:
        producer.close()
    assert len(consume_all(kafka_bootstrap, topic, 5000)) == 5000


def test_a_record_that_is_not_acknowledged_fails_the_batch(kafka_bootstrap: str) -> None:
    """The topic does not exist (the broker creates none): its records time out, and the
    batch fails although the records to the existing topic were delivered."""
    topic = f"outputs-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = OutputProducer({"bootstrap.servers": kafka_bootstrap}, "test-outputs", timeout_s=3)
    try:
        with pytest.raises(DeliveryError, match=r"records (failed|not delivered)"):
            producer.deliver(
                [OutRecord(topic, b"delivered"), OutRecord(f"missing-{topic}", b"lost")]
            )
    finally:
        producer.close()
