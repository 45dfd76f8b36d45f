"""Tells the notification channels when a destination's state changes.

Contract of ``Notifier`` (a thread of every connector process):

* one process of the installation notifies: the member of the consumer group
  ``<prefix>authtrail.notifier`` that holds the single partition of the status topic.
  The others stand by, and one takes over within the group's session timeout if it goes
  away; a notifier starting or taking over learns the states first and tells only the
  changes after (``ChangeBook``);
* every couple of seconds it reads the destinations' states as the Stream tab shows them
  (the replicas' published status, a destination's paused or suspended flag) and sends
  what ``ChangeBook`` says is due: at most one message per destination per
  ``notification_interval_seconds``, with the count of the changes it covers;
* a message is POSTed to every channel, signed as webhook destinations' requests are
  (Standard Webhooks v1); a channel that does not answer 2xx is tried three times in all,
  then the failure is logged (never the channel's secret) and the next change is told as
  usual.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import httpx

from connectors.admin.status import StatusBoard, summarize
from connectors.config import DestinationStore
from connectors.notify.changes import ChangeBook, Due
from connectors.notify.channels import ChannelStore
from infra.backoff import Backoff
from infra.kafka.clients import SESSION_TIMEOUT_MS, kafka_consumer
from schemas.destinations import Destination
from schemas.events import utc_now_ms
from schemas.notifications import NotificationChannel, StateChange
from schemas.settings import Settings

log = logging.getLogger(__name__)

LOOK_EVERY_S = 2.0
ATTEMPTS = 3
_RETRY = Backoff(1.0, 10.0)


def tell(channel: NotificationChannel, change: StateChange, timeout_s: float = 10.0) -> str | None:
    """POSTs ``change`` to ``channel``, signed; None when it answered 2xx, else what went
    wrong (the status or the transport error; never a secret). Tries ``ATTEMPTS`` times."""
    settings = channel.settings
    body = change.model_dump_json().encode()
    problem = None
    with httpx.Client(timeout=timeout_s, verify=settings.verify_tls) as http:
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(_RETRY.delay(attempt))
            headers = {
                **settings.extra_headers(),
                "Content-Type": "application/json",
                **settings.signature_headers(channel.id, body, time.time()),
            }
            try:
                response = http.post(
                    settings.endpoint or settings.url, content=body, headers=headers
                )
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
                continue
            if 200 <= response.status_code < 300:
                return None
            problem = f"HTTP {response.status_code}"
    return problem


class Notifier(threading.Thread):
    """See the module docstring."""

    def __init__(self, settings: Settings, destinations: DestinationStore) -> None:
        super().__init__(name="notifier", daemon=True)
        self._settings = settings
        self._destinations = destinations
        self._stopping = threading.Event()
        self.book = ChangeBook(settings.notification_interval_seconds)
        self.leading = False

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        settings = self._settings
        consumer = kafka_consumer(
            settings,
            f"{settings.topics.prefix}authtrail.notifier",
            {"client.id": "authtrail-notifier", "session.timeout.ms": SESSION_TIMEOUT_MS},
        )
        consumer.subscribe([settings.topics.connector_status])
        try:
            with StatusBoard(settings) as board, ChannelStore(settings) as channels:
                while not self._stopping.is_set():
                    consumer.poll(LOOK_EVERY_S)  # serves the group; the records are not used
                    leading = bool(consumer.assignment())
                    if leading != self.leading:
                        log.info("notifier: %s", "notifying" if leading else "standing by")
                        self.book = ChangeBook(settings.notification_interval_seconds)
                        self.leading = leading
                    if leading:
                        self._look(board, channels)
        except Exception:
            log.exception("notifier stopped on an error")
        finally:
            consumer.close()

    def _look(self, board: StatusBoard, channels: ChannelStore) -> None:
        now = time.time()
        published = board.published()
        destinations = {d.id: d for d in self._destinations.all()}
        summaries = {
            d.id: summarize(d, published.get(d.id, []), None, now) for d in destinations.values()
        }
        for destination_id, summary in summaries.items():
            self.book.observe(destination_id, str(summary["state"]), now)
        for gone in self.book.known() - set(destinations):
            self.book.forget(gone)
        for due in self.book.due(now):
            destination = destinations[due.destination_id]
            change = _change(destination, due, summaries[destination.id].get("last_error"))
            for channel in channels.all():
                problem = tell(channel, change)
                if problem is not None:
                    log.warning(
                        "notification to channel %s (%s) failed: %s",
                        channel.id,
                        channel.name,
                        problem,
                    )


def test_message() -> StateChange:
    """What ``notifications test`` and the API's test send: marked ``authtrail.test``."""
    now = utc_now_ms()
    return StateChange(
        type="authtrail.test",
        destination_id="test",
        destination_name="authtrail test message",
        platform="none",
        previous_state="healthy",
        state="healthy",
        changes=0,
        first_change_at=now,
        sent_at=now,
    )


def _change(destination: Destination, due: Due, last_error: object) -> StateChange:
    return StateChange(
        destination_id=destination.id,
        destination_name=destination.name,
        platform=destination.platform,
        previous_state=due.previous,
        state=due.state,
        changes=due.changes,
        first_change_at=datetime.fromtimestamp(due.first_change_at, UTC),
        last_error=str(last_error) if last_error else None,
        sent_at=utc_now_ms(),
    )
