"""Faults injected mid-stream into a whole authtrail (separate processes on a real
broker, the platforms' receivers): each test streams a known set of events, and at the
end the log view holds each exactly once and every platform received each at least once,
duplicates counted (see ``harness``)."""

from __future__ import annotations

import time

from pipeline.app import COMMIT_INTERVAL_S
from tests.faults.harness import Trail


def test_ingest_worker_killed_twice(trail: Trail) -> None:
    trail.stream()
    for fraction in (0.3, 0.6):
        trail.wait_sent(fraction)
        trail.ingest.kill_9()
        trail.healed()
        trail.start_ingest()
    outcome = trail.settle_and_count("ingest worker kill -9, twice")
    trail.check_duplicates(outcome, ingest_crashes=2)


def test_connector_killed_mid_batch(trail: Trail) -> None:
    trail.stream()
    trail.wait_sent(0.4)
    trail.connectors.kill_9()
    trail.healed()
    trail.connectors.start()
    outcome = trail.settle_and_count("connector process kill -9")
    trail.check_duplicates(outcome, connector_crashes=1)


def test_broker_stopped_under_load(trail: Trail) -> None:
    trail.stream()
    trail.wait_sent(0.3)
    trail.broker.stop()
    time.sleep(trail.size.broker_down_s)
    trail.broker.start()
    trail.healed()
    # Every connector resumes within moments of the broker answering: a consumer that
    # does not fails the row at the bound, with what each group is doing.
    outcome = trail.settle_and_count(
        f"broker stopped {trail.size.broker_down_s:.0f} s",
        recover_within_s=trail.size.broker_recovery_s,
    )
    # Commits fail while the broker is away: as if every process had crashed once.
    trail.check_duplicates(outcome, ingest_crashes=1, connector_crashes=1)


def test_platform_down_and_another_throttling(trail: Trail) -> None:
    _, datadog = trail.receivers["datadog"]
    _, splunk = trail.receivers["splunk"]
    trail.stream()
    trail.wait_sent(0.3)
    half = trail.size.destination_down_s / 2
    splunk.faults.throttle(1_000_000, retry_after=1)
    datadog.down()  # connection refused
    time.sleep(half)
    datadog.faults.fail_next(1_000_000, 503)
    datadog.up()  # then 503s
    time.sleep(half)
    datadog.faults.clear()
    splunk.faults.clear()
    trail.healed()
    outcome = trail.settle_and_count(
        f"Datadog refused then 503 for {trail.size.destination_down_s:.0f} s; "
        "Splunk 429 + Retry-After meanwhile"
    )
    assert datadog.store.requests.get(503, 0) > 0 and splunk.store.requests.get(429, 0) > 0
    # The other platforms were not held back: they had everything before the heal.
    assert outcome.delivered["sumologic"] == outcome.sent


def test_clickhouse_unreachable(trail: Trail) -> None:
    trail.stream()
    trail.wait_sent(0.3)
    trail.fault_file.write_text("unreachable")
    time.sleep(trail.size.store_down_s)
    trail.fault_file.write_text("")
    trail.healed()
    outcome = trail.settle_and_count(f"ClickHouse unreachable {trail.size.store_down_s:.0f} s")
    trail.check_duplicates(outcome)  # nothing is produced before it is stored
    assert trail.ingest.logged("log store unavailable, retrying the batch")


def test_disk_full_holds_offsets(trail: Trail) -> None:
    """Inserts refused for lack of disk; the worker is killed while they are, and started
    again still full: had any offset moved past an unstored event, that event would be
    lost, since a restart resumes from the committed offsets."""
    trail.stream()
    trail.wait_sent(0.3)
    trail.fault_file.write_text("disk_full")
    time.sleep(trail.size.store_down_s / 2)
    trail.ingest.kill_9()
    trail.start_ingest()
    time.sleep(trail.size.store_down_s / 2)
    trail.fault_file.write_text("")
    trail.healed()
    outcome = trail.settle_and_count(
        f"disk full {trail.size.store_down_s:.0f} s, worker kill -9 while full"
    )
    trail.check_duplicates(outcome, ingest_crashes=1)
    assert trail.ingest.logged("NOT_ENOUGH_SPACE")


def test_store_holds_a_batch_while_later_ones_are_stored_then_worker_killed(
    trail: Trail,
) -> None:
    """The store refuses the batch holding the stream's first event (first on its
    partition: nothing is committed there yet) while the batches after it are stored;
    commits run meanwhile; then the worker is killed. A commit past the held batch would
    lose it: the restarted worker resumes from the committed offsets."""
    first = trail.event_id(0)
    trail.fault_file.write_text(f"hold:{first}")
    trail.stream()
    trail.wait_until(lambda: (trail.stored_count() or 0) > 0, "later batches are stored")
    time.sleep(2 * COMMIT_INTERVAL_S + 1)  # the worker's periodic commits run meanwhile
    assert first not in trail.stored_ids()
    trail.ingest.kill_9()
    trail.fault_file.write_text("")
    trail.start_ingest()
    trail.healed()
    outcome = trail.settle_and_count("store holds one batch, later ones stored; worker kill -9")
    trail.check_duplicates(outcome, ingest_crashes=1)
    assert trail.ingest.logged("log store unavailable, retrying the batch")


def test_connectors_stopped_while_a_platform_holds_a_batch(trail: Trail) -> None:
    """Every platform answers 503 to the request holding one event, and accepts the rest:
    that batch is retried while the batches after it are delivered. The connector process
    is stopped (SIGTERM) mid-retry, the platforms recover, it is started again: a commit
    past the held batch would lose it."""
    held = trail.size.events // 4
    for _, receiver in trail.receivers.values():
        receiver.faults.unavailable_for(trail.event_id(held))
    trail.stream()
    # More distinct events than come before the held one: later batches got through.
    trail.wait_until(
        lambda: all(len(counts) > held + 500 for counts in trail.received().values()),
        "batches after the held one are delivered everywhere",
    )
    assert not any(trail.event_id(held) in c for c in trail.received().values())
    assert trail.connectors.stop() == 0
    for _, receiver in trail.receivers.values():
        receiver.faults.unavailable_for(None)
    trail.connectors.start()
    trail.healed()
    outcome = trail.settle_and_count("platforms hold one batch; connectors SIGTERM mid-retry")
    trail.check_duplicates(outcome, connector_crashes=1)
