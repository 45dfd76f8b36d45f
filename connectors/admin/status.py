"""Destination status as the Stream tab and ``authtrail destinations status`` show it:
what the connector processes publish (``authtrail.connector-status``, one record per
destination and replica) merged with lag computed from Kafka itself (the destination
group's committed offsets against the normalized topic's high watermarks)."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from infra.kafka.clients import admin_client
from infra.kafka.compacted import CompactedView, ViewedTopic
from infra.kafka.lag import group_lag
from infra.kafka.topic_admin import probe_consumer
from schemas.destinations import STATES_WORST_FIRST, Destination
from schemas.settings import Settings

log = logging.getLogger(__name__)

STALE_S = 30.0  # a replica that has not published for this long is not counted


class StatusBoard(ViewedTopic[dict[str, Any]]):
    """The status topic kept in memory plus the clients lag is computed with, kept open
    (the API answers every status request from it; ``with`` starts and stops it)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._view = CompactedView(
            settings.kafka_client_config(), settings.topics.connector_status, _decode
        )
        self._admin = admin_client(settings)
        self._probe = probe_consumer(settings, "authtrail-lag-probe")

    def stop(self) -> None:
        super().stop()
        self._probe.close()

    def published(self) -> dict[str, list[dict[str, Any]]]:
        """Published status records by destination id (one per replica)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for record in self._view.items().values():
            out.setdefault(str(record.get("destination_id")), []).append(record)
        return out

    def stalled(self, now: float) -> list[str]:
        """The destinations a live replica reports ``stalled`` (``/healthz`` names them)."""
        return sorted(
            destination_id
            for destination_id, replicas in self.published().items()
            if worst_live_state(replicas, now) == "stalled"
        )

    def lag(self, group: str, timeout_s: float = 10.0) -> int:
        return group_lag(self._settings, self._admin, self._probe, group, timeout_s)

    def summary(self, destination: Destination) -> dict[str, Any]:
        published = self.published().get(destination.id, [])
        return summarize(destination, published, self.lag(destination.group_id), time.time())


def _decode(_key: str, value: bytes) -> dict[str, Any] | None:
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _live(replicas: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    return [r for r in replicas if now - float(r.get("updated_at") or 0) <= STALE_S]


def worst_live_state(replicas: list[dict[str, Any]], now: float) -> str | None:
    """The worst state the live replicas report (None when none is live)."""
    live = _live(replicas, now)
    if not live:
        return None
    return min(
        (str(r.get("state")) for r in live),
        key=lambda s: STATES_WORST_FIRST.index(s) if s in STATES_WORST_FIRST else 99,
    )


def summarize(
    destination: Destination, replicas: list[dict[str, Any]], lag: int | None, now: float
) -> dict[str, Any]:
    """One destination's status: counters summed over live replicas, the worst state."""
    live = _live(replicas, now)
    if destination.paused:
        state = "paused"
    elif destination.suspended_at is not None:
        state = "suspended"
    else:
        state = worst_live_state(replicas, now) or "not running"
    errors = sorted(
        (r for r in replicas if r.get("last_error")),
        key=lambda r: float(r.get("last_error_at") or 0),
    )
    successes = [float(r["last_success"]) for r in replicas if r.get("last_success")]
    return {
        "id": destination.id,
        "name": destination.name,
        "platform": destination.platform,
        "state": state,
        "lag": lag,
        "delivered": sum(int(r.get("delivered") or 0) for r in replicas),
        "dead_lettered": sum(int(r.get("dead_lettered") or 0) for r in replicas),
        "filtered": sum(int(r.get("filtered") or 0) for r in replicas),
        "retries": sum(int(r.get("retries") or 0) for r in replicas),
        "stalls": sum(int(r.get("stalls") or 0) for r in replicas),
        "replicas": len(live),
        "events_per_s": round(sum(float(r.get("events_per_s") or 0) for r in live), 1),
        "last_success": max(successes) if successes else None,
        "last_error": errors[-1]["last_error"] if errors else None,
    }
