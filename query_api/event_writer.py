"""The HTTP ingest's Kafka producer: writes a request's events to the raw topic and
reports once the brokers have all of them (``acks=all``), so ``202`` means stored."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Any, cast

from confluent_kafka import KafkaError, Message, Producer

from query_api.event_intake import IncomingEvent
from schemas.settings import Settings

log = logging.getLogger(__name__)

# How long a request waits for the brokers before it is answered 503: a broker restart
# fits, a caller's own HTTP timeout (often 30 s) does not run out first.
DELIVERY_TIMEOUT_S = 10.0


class BrokerUnavailableError(RuntimeError):
    """Not every event of a request was acknowledged. Those that were are in the topic; a
    retry of the same request is safe: each event keeps its id, the store keeps one."""


class EventWriter:
    """One idempotent producer per API process, shared by its requests; a thread serves
    its delivery reports."""

    def __init__(self, settings: Settings, timeout_s: float = DELIVERY_TIMEOUT_S) -> None:
        self.topic = settings.topics.raw
        self.timeout_s = timeout_s
        self._producer = Producer(
            {
                **settings.kafka_client_config(),
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 2,
                "compression.type": "lz4",
                "message.timeout.ms": int(timeout_s * 1000),
                "logger": cast(Any, log),
            }
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="event-writer", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    async def write(self, events: Sequence[IncomingEvent]) -> None:
        """Produces ``events`` in order and returns once the brokers acknowledged every
        one. Raises ``BrokerUnavailableError`` when one was not within ``timeout_s`` (or
        the producer's queue is full)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        pending = len(events)
        errors: list[str] = []
        lock = threading.Lock()

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            nonlocal pending
            with lock:
                if err is not None:
                    errors.append(err.str())
                pending -= 1
                finished = pending == 0
            if finished:
                loop.call_soon_threadsafe(_settle, done)

        for event in events:
            try:
                self._producer.produce(
                    self.topic, value=event.value, key=event.key, on_delivery=on_delivery
                )
            except BufferError:
                raise BrokerUnavailableError("the producer's queue is full") from None
            except Exception as exc:
                raise BrokerUnavailableError(str(exc)) from None
        try:
            await asyncio.wait_for(asyncio.shield(done), self.timeout_s + 5)
        except TimeoutError:
            raise BrokerUnavailableError("no acknowledgement in time") from None
        if errors:
            raise BrokerUnavailableError(errors[0])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._producer.flush(self.timeout_s)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
