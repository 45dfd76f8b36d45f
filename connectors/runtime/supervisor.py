"""Runs one worker per enabled destination and keeps the set in step with the config
topic: destinations added, changed, paused, resumed or removed take effect within moments,
without a restart. Publishes each worker's status to ``authtrail.connector-status`` every
few seconds, suspends destinations failing for longer than their ``suspend_after``,
replaces the consumer of a destination found stalled (``connectors.runtime.stall``: events
waiting, no progress, the broker answering) and runs the notifier (``connectors.notify``).
SREs scale a destination by running more processes: Kafka spreads its partitions among
them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from connectors.config import DestinationStore
from connectors.notify.notifier import Notifier
from connectors.runtime.archive import ArchiveWorker
from connectors.runtime.metrics import ConnectorCollector
from connectors.runtime.stall import StallWatch
from connectors.runtime.worker import REPLICA, SHUTDOWN_GRACE_S, DestinationWorker
from connectors.sinks import writes_files
from infra.kafka.clients import CLOSE_WITHIN_S, admin_client
from infra.kafka.lag import (
    PartitionOffsets,
    group_lag,
    group_offsets,
    member_partitions,
    topic_watermarks,
)
from infra.kafka.topic_admin import probe_consumer
from pipeline.erasure import ErasureLog
from schemas.destinations import Destination
from schemas.erasure import ErasureSet
from schemas.settings import Settings

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 2.0
RESTART_AFTER_S = 10.0
STALL_CHECK_S = 5.0  # how often the group offsets are compared with the workers' reading
STALL_QUERY_TIMEOUT_S = 3.0  # a broker that does not answer in this long is not answering
# A stalled worker stops after its batches in flight (bounded) and its consumer's close
# (bounded): waited for this long, then left behind.
REPLACE_WAIT_S = SHUTDOWN_GRACE_S + CLOSE_WITHIN_S + 5.0


WorkerFactory = Callable[
    [Settings, Destination, Callable[[], ErasureSet] | None], DestinationWorker
]


class ConnectorRuntime:
    """See the module docstring. ``only``: run just these destination ids; ``beat`` is
    called on every turn of ``run``'s loop (the process's liveness probe);
    ``make_worker`` builds each worker (``worker_for`` unless a test wedges one)."""

    def __init__(
        self,
        settings: Settings,
        only: Iterable[str] = (),
        beat: Callable[[], None] = lambda: None,
        make_worker: WorkerFactory | None = None,
    ) -> None:
        self._settings = settings
        self._make_worker = make_worker or worker_for
        self._only = set(only)
        self._workers: dict[str, DestinationWorker] = {}
        self._started_at: dict[str, float] = {}
        self._lag_probe: Consumer | None = None
        self._rate_base: dict[str, tuple[float, int]] = {}  # (time, delivered) last published
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._changed = threading.Event()
        self._store = DestinationStore(settings, on_change=lambda *_: self._changed.set())
        self._watches: dict[str, StallWatch] = {}
        self._replacing: set[str] = set()  # destinations whose stalled worker is replaced
        self._stall_admin: AdminClient | None = None
        self._stall_probe: Consumer | None = None
        self._erasures = ErasureLog(settings)
        self._beat = beat
        self.notifier: Notifier | None = None  # while ``run`` runs
        self._status_producer = Producer(
            {**settings.kafka_client_config(), "linger.ms": 50, "logger": cast(Any, log)}
        )

    def run(self) -> None:
        """Until ``stop()``: reconciles workers on every change, restarts crashed ones,
        publishes status."""
        self._store.start()
        self._erasures.start()
        notifier = self.notifier = Notifier(self._settings, self._store)
        notifier.start()
        last_status = last_stall_check = 0.0
        try:
            while not self._stopping.is_set():
                self._beat()
                self._suspend_overdue()
                self._reconcile(self._store.all())
                if time.monotonic() - last_stall_check >= STALL_CHECK_S:
                    self._check_stalls()
                    last_stall_check = time.monotonic()
                if time.monotonic() - last_status >= STATUS_INTERVAL_S:
                    self._publish_status()
                    last_status = time.monotonic()
                self._changed.wait(0.5)
                self._changed.clear()
        finally:
            notifier.stop()
            self._stop_all()
            self._publish_status()
            notifier.join(10)
            self._store.stop()
            self._erasures.stop()
            for probe in (self._lag_probe, self._stall_probe):
                if probe is not None:
                    probe.close()

    def stop(self) -> None:
        self._stopping.set()
        self._changed.set()

    def metrics(self) -> ConnectorCollector:
        """A Prometheus collector over this runtime's workers (its lag clients stay open
        until ``run`` ends)."""
        admin = admin_client(self._settings)
        probe = self._lag_probe = probe_consumer(self._settings, "authtrail-lag-probe")
        return ConnectorCollector(
            self.workers,
            lambda group: group_lag(self._settings, admin, probe, group),
            self._store.all,
        )

    def workers(self) -> dict[str, DestinationWorker]:
        with self._lock:
            return dict(self._workers)

    def health(self) -> dict[str, object]:
        """What ``/healthz`` adds for the Stream side: each destination's state in this
        process, and the ones stalled now."""
        states = {d: w.status.state for d, w in sorted(self.workers().items())}
        return {
            "destinations": states,
            "stalled": sorted(d for d, state in states.items() if state == "stalled"),
        }

    # -- stalls ---------------------------------------------------------------------------
    def _check_stalls(self) -> None:
        """Compares each worker's reading with its group's offsets as Kafka has them
        (``StallWatch``) and replaces the consumer of a worker found stalled."""
        workers = {d: w for d, w in self.workers().items() if d not in self._replacing}
        if not workers:
            return
        now = time.monotonic()
        watermarks = self._watermarks()
        admin = self._stall_admin_client()
        members = (
            member_partitions(
                self._settings,
                admin,
                [w.destination.group_id for w in workers.values()],
                STALL_QUERY_TIMEOUT_S,
            )
            if watermarks is not None
            else {}
        )
        for destination_id, worker in workers.items():
            group = worker.destination.group_id
            offsets: dict[int, PartitionOffsets] | None = None
            if watermarks is not None:
                try:
                    offsets = group_offsets(
                        self._settings, admin, group, watermarks, STALL_QUERY_TIMEOUT_S
                    )
                except Exception as exc:
                    log.debug("destination %s: group offsets unavailable: %s", destination_id, exc)
            of_group = members.get(group)
            me = worker.member_id()
            others = (
                None
                if of_group is None
                else set().union(*(p for m, p in of_group.items() if m != me))
            )
            watch = self._watches.setdefault(
                destination_id, StallWatch(self._settings.connector_stall_seconds)
            )
            reason = watch.observe(
                now,
                offsets,
                worker.status.partitions,
                others,
                worker.read_to(),
                worker.status.state,
            )
            if reason is not None:
                self._replace_stalled(destination_id, worker, reason)

    def _watermarks(self) -> dict[int, tuple[int, int]] | None:
        if self._stall_probe is None:
            self._stall_probe = probe_consumer(self._settings, "authtrail-stall-probe")
        try:
            return topic_watermarks(self._settings, self._stall_probe, STALL_QUERY_TIMEOUT_S)
        except Exception as exc:  # the broker does not answer: no clock runs meanwhile
            log.debug("normalized topic's watermarks unavailable: %s", exc)
            return None

    def _stall_admin_client(self) -> AdminClient:
        if self._stall_admin is None:
            self._stall_admin = admin_client(self._settings)
        return self._stall_admin

    def _replace_stalled(self, destination_id: str, worker: DestinationWorker, reason: str) -> None:
        """Shows ``worker`` stalled and, in a thread of its own (the loop keeps publishing
        status meanwhile), stops it and starts a replacement: a new consumer, a new member
        of the group, reading on from the committed offsets. The replacement stays
        ``stalled`` until it delivers a batch."""
        log.warning(
            "destination %s: stalled: %s; its consumer (state %s) is replaced",
            destination_id,
            reason,
            worker.status.state,
        )
        worker.stalled(reason)
        self._replacing.add(destination_id)
        self._watches.pop(destination_id, None)
        self._publish_status()  # now: the Stream tab and the notifier see it at once

        def replace() -> None:
            try:
                worker.stop()
                worker.join(REPLACE_WAIT_S)
                if worker.is_alive():
                    log.warning(
                        "destination %s: the stalled worker did not stop within %.0f s; "
                        "left behind",
                        destination_id,
                        REPLACE_WAIT_S,
                    )
                replacement = self._make_worker(
                    self._settings, worker.destination, self._erasures.erasure_set
                )
                replacement.carry_on(worker.status, "stalled")
                with self._lock:
                    if self._workers.get(destination_id) is worker and not self._stopping.is_set():
                        replacement.start()
                        self._workers[destination_id] = replacement
                        self._started_at[destination_id] = time.monotonic()
                        log.info(
                            "destination %s: a new consumer replaces the stalled one",
                            destination_id,
                        )
            finally:
                self._replacing.discard(destination_id)
                self._changed.set()

        threading.Thread(target=replace, name=f"replace-{destination_id}", daemon=True).start()

    def _wanted(self, destination: Destination) -> bool:
        return (
            not destination.paused
            and destination.suspended_at is None
            and (not self._only or destination.id in self._only)
        )

    def _suspend_overdue(self) -> None:
        """Suspends each destination whose worker has been failing (every request, not
        for credentials) for longer than the destination's ``suspend_after_s``."""
        now = time.time()
        for destination_id, worker in self.workers().items():
            since = worker.status.failing_since
            if worker.status.state != "failing" or since is None:
                continue
            if now - since < worker.destination.suspend_after_s:
                continue
            if self._store.suspend(destination_id) is not None:
                log.warning(
                    "destination %s: suspended after failing for %.0f s (%s); resume it by hand",
                    destination_id,
                    now - since,
                    worker.status.last_error,
                )

    def _reconcile(self, destinations: list[Destination]) -> None:
        wanted = {d.id: d for d in destinations if self._wanted(d)}
        with self._lock:
            for destination_id, worker in list(self._workers.items()):
                if destination_id in self._replacing:
                    continue  # its replacement decides (``_replace_stalled``)
                current = wanted.get(destination_id)
                changed = (
                    current is not None and current.updated_at != worker.destination.updated_at
                )
                crashed = not worker.is_alive()
                if (
                    crashed
                    and current is not None
                    and not changed
                    and (
                        time.monotonic() - self._started_at.get(destination_id, 0.0)
                        < RESTART_AFTER_S
                    )
                ):
                    continue  # a crashed worker is restarted at most every RESTART_AFTER_S
                if current is None or changed or crashed:
                    worker.stop()
                    worker.join(60)
                    del self._workers[destination_id]
                    self._watches.pop(destination_id, None)
                    reason = (
                        "removed or paused"
                        if current is None
                        else "changed"
                        if changed
                        else "crashed; restarting"
                    )
                    log.info("destination %s: worker stopped (%s)", destination_id, reason)
            for destination_id, destination in wanted.items():
                if destination_id not in self._workers:
                    worker = self._make_worker(
                        self._settings, destination, self._erasures.erasure_set
                    )
                    worker.start()
                    self._workers[destination_id] = worker
                    self._started_at[destination_id] = time.monotonic()
                    log.info(
                        "destination %s (%s): worker started", destination_id, destination.platform
                    )

    def _stop_all(self) -> None:
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.join(60)

    def _publish_status(self) -> None:
        topic = self._settings.topics.connector_status
        for destination_id, worker in self.workers().items():
            now = worker.status.updated_at = time.time()
            delivered = worker.status.delivered
            since, before = self._rate_base.get(destination_id, (now, delivered))
            if now > since and delivered >= before:
                worker.status.events_per_s = round((delivered - before) / (now - since), 1)
            self._rate_base[destination_id] = (now, delivered)
            self._status_producer.produce(
                topic, key=f"{destination_id}/{REPLICA}".encode(), value=worker.status.to_json()
            )
        if self._status_producer.flush(5):
            log.warning("connector status not published within 5 s")


def worker_for(
    settings: Settings,
    destination: Destination,
    erasures: Callable[[], ErasureSet] | None = None,
) -> DestinationWorker:
    """An ``ArchiveWorker`` for a platform written in files, else a ``DestinationWorker``
    (which shows a destination it cannot build a sink for as failing)."""
    try:
        files = writes_files(destination.platform)
    except ValueError:
        files = False
    return (ArchiveWorker if files else DestinationWorker)(settings, destination, erasures)
