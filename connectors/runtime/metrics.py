"""Prometheus metrics of a connector process, read from the workers' own status at scrape
time (one source of truth: what ``destinations status`` shows is what is scraped).

    authtrail_connector_delivered_total{destination,platform}
    authtrail_connector_dead_lettered_total{destination,platform}
    authtrail_connector_filtered_total{destination,platform}
    authtrail_connector_retries_total{destination,platform}
    authtrail_connector_stalls_total{destination,platform}         consumers found stalled
    authtrail_connector_state{destination,platform,state}          1 for the current state
    authtrail_connector_last_success_timestamp_seconds{destination,platform}
    authtrail_connector_lag{destination,platform}                  uncommitted events
    authtrail_destination_suspended{destination,platform}          1 while suspended
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from connectors.runtime.worker import DestinationWorker
from schemas.destinations import WORKER_STATES, Destination

log = logging.getLogger(__name__)
STATES = WORKER_STATES
LAG_CACHE_S = 10.0


class ConnectorCollector(Collector):
    """Collects from ``workers()``; ``lag(group)`` is asked at most every 10 s per group
    (it costs admin round trips)."""

    def __init__(
        self,
        workers: Callable[[], dict[str, DestinationWorker]],
        lag: Callable[[str], int],
        destinations: Callable[[], list[Destination]] = list,
    ) -> None:
        self._workers = workers
        self._lag = lag
        self._destinations = destinations
        self._lag_cache: dict[str, tuple[float, int]] = {}

    def _cached_lag(self, group: str) -> int | None:
        cached = self._lag_cache.get(group)
        if cached is not None and time.monotonic() - cached[0] < LAG_CACHE_S:
            return cached[1]
        try:
            value = self._lag(group)
        except Exception as exc:
            log.debug("lag of %s unavailable: %s", group, exc)
            return cached[1] if cached else None
        self._lag_cache[group] = (time.monotonic(), value)
        return value

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        labels = ["destination", "platform"]
        counters = {
            name: CounterMetricFamily(f"authtrail_connector_{name}", help_text, labels=labels)
            for name, help_text in (
                ("delivered", "Events the platform accepted."),
                ("dead_lettered", "Events sent to the destination's dead-letter topic."),
                ("filtered", "Events the destination's filter excluded."),
                ("retries", "Requests retried after a transient failure."),
                (
                    "stalls",
                    "Times the destination's consumer was found stalled (events waiting, no "
                    "progress, the broker answering) and replaced.",
                ),
            )
        }
        state = GaugeMetricFamily(
            "authtrail_connector_state", "1 for the current state.", labels=[*labels, "state"]
        )
        success = GaugeMetricFamily(
            "authtrail_connector_last_success_timestamp_seconds",
            "When a batch was last delivered.",
            labels=labels,
        )
        lag = GaugeMetricFamily(
            "authtrail_connector_lag",
            "Events on the normalized topic the group has not committed.",
            labels=labels,
        )
        for destination_id, worker in self._workers().items():
            values = [destination_id, worker.destination.platform]
            status = worker.status
            counters["delivered"].add_metric(values, status.delivered)
            counters["dead_lettered"].add_metric(values, status.dead_lettered)
            counters["filtered"].add_metric(values, status.filtered)
            counters["retries"].add_metric(values, status.retries)
            counters["stalls"].add_metric(values, status.stalls)
            for name in STATES:
                state.add_metric([*values, name], 1.0 if status.state == name else 0.0)
            if status.last_success is not None:
                success.add_metric(values, status.last_success)
            current = self._cached_lag(worker.destination.group_id)
            if current is not None:
                lag.add_metric(values, current)
        # A suspended destination has no worker: the configuration says it (every
        # connector process reports the same value).
        suspended = GaugeMetricFamily(
            "authtrail_destination_suspended",
            "1 while the destination is suspended (failing too long; resumed by hand).",
            labels=labels,
        )
        for destination in self._destinations():
            suspended.add_metric(
                [destination.id, destination.platform],
                0.0 if destination.suspended_at is None else 1.0,
            )
        yield from counters.values()
        yield from (state, success, lag, suspended)
