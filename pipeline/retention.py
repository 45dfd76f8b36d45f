"""Accounts' own retention: the log of them (``RetentionLog``: CLI, API) and the ingest
worker's ``RetentionKeeper``, which gives the log store's TTL every change.

An admin's change is a record in the compacted ``authtrail.account-retention`` topic;
every ingest worker follows the topic and brings the table's TTL to it (an idempotent
``MODIFY TTL``: workers that race write the same expression). So the CLI needs no access
to the store, the embedded one included, which only the worker's process may open."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from pydantic import ValidationError

from infra.clickhouse.client import apply_retention, connect
from infra.kafka.compacted import CompactedView, ViewedTopic, publish
from schemas.events import utc_now_ms
from schemas.log_store import StoreLocation
from schemas.retention import AccountRetention
from schemas.settings import Settings

log = logging.getLogger(__name__)


def _decode(key: str, value: bytes) -> AccountRetention | None:
    try:
        return AccountRetention.model_validate_json(value)
    except ValidationError as exc:
        log.error("retention record %s cannot be read: %s", key, exc.errors()[0]["msg"])
        return None


class RetentionLog(ViewedTopic[AccountRetention]):
    """The accounts' own retention, kept current from the topic."""

    def __init__(
        self,
        settings: Settings,
        on_change: Callable[[str, AccountRetention | None, AccountRetention | None], None]
        | None = None,
    ) -> None:
        self._settings = settings
        self._view: CompactedView[AccountRetention] = CompactedView(
            settings.kafka_client_config(),
            settings.topics.account_retention,
            _decode,
            on_change=on_change,
        )

    def records(self) -> list[AccountRetention]:
        return sorted(self._view.items().values(), key=lambda r: r.account)

    def account_days(self) -> dict[str, int]:
        return {r.account: r.days for r in self._view.items().values()}

    def set(self, account: str, days: int, by: str) -> AccountRetention:
        """Records ``account``'s retention (waits for the brokers and reads it back)."""
        record = AccountRetention(account=account, days=days, set_by=by, set_at=utc_now_ms())
        publish(
            self._settings.kafka_client_config(),
            self._settings.topics.account_retention,
            record.account,
            record.model_dump_json().encode(),
        )
        self.catch_up()
        return record

    def unset(self, account: str) -> None:
        """Returns ``account`` to the default retention."""
        publish(
            self._settings.kafka_client_config(),
            self._settings.topics.account_retention,
            account,
            None,
        )
        self.catch_up()


def read_account_days(settings: Settings) -> dict[str, int]:
    """The accounts' own retention now (read once, e.g. at a worker's start)."""
    with RetentionLog(settings) as view:
        return view.account_days()


class RetentionKeeper:
    """Follows the retention topic and gives the log store at ``location`` its TTL after
    every change, from a thread of its own with a client of its own. Changes that arrive
    while one is applied are applied together next.

    ``follow()`` reads the topic (``log.account_days()`` then serves the migration at a
    worker's start); ``start()``, once ``location`` is set, applies."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.location: StoreLocation | None = None
        self._changed = threading.Event()
        self._stop = threading.Event()
        self.log = RetentionLog(settings, on_change=lambda *_: self._changed.set())
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)

    def follow(self) -> RetentionKeeper:
        self.log.start()
        return self

    def start(self) -> RetentionKeeper:
        if self.location is None:
            raise RuntimeError("RetentionKeeper.start() needs its location")
        self._changed.set()  # bring the TTL to the topic once, whatever it was
        self._thread.start()
        return self

    def _run(self) -> None:
        client = None
        try:
            while not self._stop.is_set():
                if not self._changed.wait(0.5):
                    continue
                self._changed.clear()
                location = self.location
                assert location is not None
                try:
                    client = client or connect(location)
                    apply_retention(
                        client, location, self._settings.retention_days, self.log.account_days()
                    )
                except Exception as exc:  # the store is down: try again shortly
                    log.error("applying the accounts' retention failed: %s", exc)
                    self._changed.set()
                    self._stop.wait(5)
        finally:
            if client is not None:
                client.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.log.stop()
