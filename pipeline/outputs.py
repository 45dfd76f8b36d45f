"""Produces the pipeline's output records: normalized events and dead letters.

Uses confluent-kafka (librdkafka) rather than faust's producer: a whole batch is handed
over at once and ``flush`` waits for every delivery report, which is exactly the
"all of this batch is durable" point the batch processor needs before it acks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer

log = logging.getLogger(__name__)

Headers = list[tuple[str, str | bytes | None]]


@dataclass(slots=True)
class OutRecord:
    topic: str
    value: bytes
    key: bytes | None = None
    headers: Headers = field(default_factory=list)


class DeliveryError(RuntimeError):
    """Some records of a batch were not delivered; the batch must be retried."""


class OutputProducer:
    """Delivers batches of records to Kafka, idempotently (``enable.idempotence``) and with
    ``acks=all``.

    Contract of ``deliver``: blocks until every record is acknowledged by the brokers or
    raises ``DeliveryError``; on error some records may already be written (the caller
    re-sends the batch, consumers dedupe on ``event_id``). Call from one thread."""

    def __init__(
        self, client_config: dict[str, str], client_id: str, timeout_s: float = 30.0
    ) -> None:
        self._timeout_s = timeout_s
        self._producer = Producer(
            {
                **client_config,
                "client.id": client_id,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "batch.size": 1_000_000,
                "message.timeout.ms": int(timeout_s * 1000),
                "queue.buffering.max.messages": 500_000,
                # A report only for a record that failed: one Python callback per record
                # delivered was ~1 µs of the worker's GIL per event. ``flush`` still waits
                # for every record's acknowledgement.
                "delivery.report.only.error": True,
                "logger": cast(Any, log),
            }
        )

    def deliver(self, records: Sequence[OutRecord]) -> None:
        errors: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                errors.append(err)

        for record in records:
            while True:
                try:
                    self._producer.produce(
                        record.topic,
                        value=record.value,
                        key=record.key,
                        headers=record.headers,
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:
                    # Local queue full: serve delivery reports to make room.
                    self._producer.poll(0.1)
                except KafkaException as exc:
                    raise DeliveryError(str(exc)) from None
        remaining = self._producer.flush(self._timeout_s)
        if remaining:
            raise DeliveryError(f"{remaining} records not delivered within {self._timeout_s}s")
        if errors:
            raise DeliveryError(f"{len(errors)} records failed, first: {errors[0].str()}")

    def close(self) -> None:
        self._producer.flush(self._timeout_s)
