"""Shared by the connector tests: a prefix of topics on the session broker with its
destination store and a connector runtime, and normalized events to feed it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer

from connectors.config import DestinationStore
from connectors.runtime.supervisor import ConnectorRuntime, WorkerFactory
from infra.kafka.topic_admin import ensure_topics
from schemas.settings import Settings
from tests.integration.conftest import consume_all


def normalized_event(i: int, **fields: Any) -> dict[str, Any]:
    """A normalized event as the pipeline writes it (a third are failures)."""
    failed = i % 3 == 0
    event: dict[str, Any] = {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "event_key": "login.failed" if failed else "login.completed",
        "description": "Login failed" if failed else "Login completed",
        "outcome": "failure" if failed else "success",
        "occurred_at": "2026-11-26T12:00:00.000Z",
        "received_at": "2026-11-26T12:00:00.100Z",
        "account_id": f"acc_{i % 4}",
        "account_name": f"Account {i % 4}",
        "actor_id": "usr_1",
        "actor_email": "ana@acme.io",
        "actor_type": "user",
        "actor_display": "ana@acme.io",
        "ip": "99.81.198.187",
        "country": "IE",
        "user_agent": "curl/8",
        "ua_browser": "curl 8",
        "ua_os": "",
        "ua_device": "",
        "trace_id": "",
        "reason": "",
        "attributes": {"n": i},
        "raw": "{}",
    }
    event.update(fields)
    return event


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


class Stream:
    """A prefix of topics on the session broker, its destinations and a runtime."""

    def __init__(
        self,
        bootstrap: str,
        data_dir: Path,
        settings: Settings | None = None,
        make_worker: WorkerFactory | None = None,
    ) -> None:
        fast = {"connector_linger_seconds": 0.2, "connector_auth_recheck_seconds": 0.5}
        self.settings = (
            settings.model_copy(update=fast)
            if settings is not None
            else Settings(
                data_dir=data_dir,
                kafka_bootstrap=bootstrap,
                topic_prefix=f"s{uuid.uuid4().hex[:8]}.",
                topic_partitions=3,
                **fast,
            )
        )
        ensure_topics(self.settings)
        self.store = DestinationStore(self.settings).start()
        self.runtime = ConnectorRuntime(self.settings, make_worker=make_worker)
        self._thread = threading.Thread(target=self.runtime.run, daemon=True)
        self._producer = Producer(self.settings.kafka_client_config())

    def start(self) -> None:
        self._thread.start()

    def add(self, platform: str, values: dict[str, str]) -> str:
        return self.store.add(platform, f"{platform} {uuid.uuid4().hex[:4]}", values).id

    def produce(self, count: int, **fields: Any) -> list[dict[str, Any]]:
        events = [normalized_event(i, **fields) for i in range(count)]
        for event in events:
            self._producer.produce(
                self.settings.topics.normalized,
                key=event["account_id"].encode(),
                value=orjson.dumps(event),
            )
        assert self._producer.flush(30) == 0
        return events

    def status(self, destination_id: str) -> Any:
        worker = self.runtime.workers().get(destination_id)
        return worker.status if worker else None

    def dead_letters(self, destination_id: str, expected: int) -> list[Any]:
        return consume_all(
            self.settings.kafka_bootstrap or "",
            self.settings.topics.destination_dlq(destination_id),
            expected,
        )

    def close(self) -> None:
        self.runtime.stop()
        if self._thread.is_alive():
            self._thread.join(60)
        self.store.stop()
