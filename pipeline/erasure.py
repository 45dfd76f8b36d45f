"""Erasing a person: the log of erasures (``ErasureLog``: CLI and API ask, everyone
follows), and the ingest worker's ``ErasureApplier``, which rewrites the person's events
in the log store and in the destinations' dead-letter topics, then records the erasure as
an audit event.

Asking writes a pending record to the compacted ``authtrail.erasures`` topic. The
applier is one consumer group across the ingest workers, so one worker applies each
erasure; a worker that dies mid-way leaves the record uncommitted and the next one applies
it again, which is harmless: every step recognises what is already erased. While an
erasure is recorded, ingest rewrites the person's late events before they are stored or
forwarded (``BatchProcessor``).

What is rewritten where:
* the log store: a lightweight ``UPDATE`` of the person's rows (ClickHouse patch parts):
  reads see the pseudonyms as soon as it returns, before any merge;
* each destination's dead-letter topic: a partition holding one of the person's letters
  is copied to its own end with those letters rewritten, then its records before the
  copy are deleted (``DeleteRecords``). A redrive group's place falls on the copies, so
  letters redriven before may be redriven again: a duplicate, never a loss;
* ``auth-events`` and ``auth-events.normalized`` are not rewritten: Kafka cannot change
  records in place, and their retention (``retention.ms``, 7 days) deletes the clear
  copies within it. Replaying them meanwhile goes through ingest, which erases again."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client
from confluent_kafka import KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from pydantic import ValidationError

from infra.clickhouse.client import connect
from infra.kafka.clients import kafka_consumer
from infra.kafka.compacted import CompactedView, ViewedTopic, publish
from infra.secrets import load_keyring
from pipeline.store import Row
from schemas.erasure import (
    ERASED_EVENT_KEY,
    ErasureRecord,
    ErasureSet,
    Pseudonyms,
    erase_event,
    identifier_text,
)
from schemas.events import rfc3339_ms, utc_now_ms
from schemas.keys import ERASURE_PSEUDONYMS
from schemas.log_store import ROLLUPS, StoreLocation, rollup_unit_sql
from schemas.settings import Settings

log = logging.getLogger(__name__)

# Columns of a stored row that an erasure reads and writes.
_ROW_COLUMNS = (
    "event_id",
    "account_id",
    "actor_id",
    "actor_email",
    "actor_display",
    "ip",
    "user_agent",
    "attributes",
    "raw",
)
_WRITTEN = ("actor_id", "actor_email", "actor_display", "ip", "user_agent", "attributes", "raw")
_UPDATE_CHUNK = 2_000
# ``Pseudonyms.mac`` in the store's SQL: identifiers with an '@' are compared without case.
_MAC = (
    "lower(hex(HMAC('SHA256', if(position({column}, '@') > 0, lower({column}), {column}), "
    "unhex({{k:String}}))))"
)


def pseudonyms_of(settings: Settings) -> Pseudonyms:
    """The installation's erasure key (derived from ``AUTHTRAIL_SECRET_KEY``)."""
    return Pseudonyms(load_keyring(settings).for_writing(ERASURE_PSEUDONYMS))


def _decode(key: str, value: bytes) -> ErasureRecord | None:
    try:
        return ErasureRecord.model_validate_json(value)
    except ValidationError as exc:
        log.error("erasure %s cannot be read: %s", key, exc.errors()[0]["msg"])
        return None


def _write(settings: Settings, record: ErasureRecord) -> None:
    publish(
        settings.kafka_client_config(),
        settings.topics.erasures,
        record.id,
        record.model_dump_json().encode(),
    )


class ErasureLog(ViewedTopic[ErasureRecord]):
    """The erasures, kept current from the topic; ``request`` asks for one."""

    def __init__(self, settings: Settings, pseudonyms: Pseudonyms | None = None) -> None:
        self._settings = settings
        self.pseudonyms = pseudonyms or pseudonyms_of(settings)
        self._set = ErasureSet(self.pseudonyms, ())
        self._view: CompactedView[ErasureRecord] = CompactedView(
            settings.kafka_client_config(),
            settings.topics.erasures,
            _decode,
            on_change=lambda *_: self._rebuild(),
        )

    def _rebuild(self) -> None:
        # Once per change of the topic, not per batch: ingest and every connector ask for
        # the set on each batch they handle.
        self._set = ErasureSet(self.pseudonyms, self._view.items().values())

    def records(self) -> list[ErasureRecord]:
        return sorted(self._view.items().values(), key=lambda r: r.requested_at, reverse=True)

    def erasure_set(self) -> ErasureSet:
        """The erasures in force (as of the last record read)."""
        return self._set

    def request(self, user: str, account: str | None, by: str) -> tuple[ErasureRecord, bool]:
        """Asks for the erasure of ``user`` (an id or e-mail) in ``account`` (None: every
        account); returns it and whether it is new. Asking again for the same person and
        account returns the erasure already recorded."""
        self.catch_up()
        erasure_id = self.pseudonyms.erasure_id(user, account)
        existing = self.get(erasure_id)
        if existing is not None:
            return existing, False
        record = ErasureRecord(
            id=erasure_id,
            subject=self.pseudonyms.pseudonym(identifier_text(user)),
            subject_macs=[self.pseudonyms.mac(user)],
            account=account,
            requested_by=by,
            requested_at=utc_now_ms(),
        )
        _write(self._settings, record)
        self.catch_up()
        return record, True

    def wait_applied(self, erasure_id: str, timeout_s: float) -> ErasureRecord | None:
        """The erasure once applied (within ``timeout_s``), else its record as it is."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.catch_up(1.0)
            record = self.get(erasure_id)
            if record is None or record.state == "applied" or time.monotonic() > deadline:
                return record
            time.sleep(0.2)


# -- late events ----------------------------------------------------------------------------


def erased_row(row: Row, erasures: ErasureSet) -> Row | None:
    """``row`` rewritten when it is an erased person's event (a late one), else None.
    Its key is rewritten too: an event without an account is keyed by its actor."""
    event = erasures.erased(row.json)
    if event is None:
        return None
    key = event.get("account_id") or event.get("actor_id") or row.event_id
    return Row(row.event_id, row.occurred_at, key, orjson.dumps(event))


# -- the log store ---------------------------------------------------------------------------


def _people(
    client: Client, location: StoreLocation, record: ErasureRecord, pseudonyms: Pseudonyms
) -> tuple[set[str], set[str]]:
    """The clear ids and e-mails of the person, found by their keyed hashes (the store
    computes the HMAC: the erasure holds no clear identifier), with every id seen with one
    of those e-mails and every e-mail seen with one of those ids."""
    scope = " AND account_id = {a:String}" if record.account is not None else ""
    rows = client.query(
        f"SELECT DISTINCT actor_id, actor_email FROM {location.events_table} "
        f"WHERE (actor_id != '' AND {_MAC.format(column='actor_id')} IN {{m:Array(String)}}) "
        f"OR (actor_email != '' AND {_MAC.format(column='actor_email')} IN {{m:Array(String)}})"
        + scope,
        parameters={"k": pseudonyms.key_hex, "m": record.subject_macs, "a": record.account or ""},
    ).result_rows
    ids = {r[0] for r in rows if r[0]}
    emails = {r[1] for r in rows if r[1]}
    return ids, emails


def erase_in_store(
    client: Client, location: StoreLocation, record: ErasureRecord, pseudonyms: Pseudonyms
) -> tuple[int, set[str], set[str]]:
    """Rewrites the person's stored events; returns how many, and the clear ids and
    e-mails found (for the dead letters and the erasure's hashes; never stored)."""
    ids, emails = _people(client, location, record, pseudonyms)
    if not ids and not emails:
        return 0, ids, emails
    scope = " AND account_id = {a:String}" if record.account is not None else ""
    rows = client.query(
        f"SELECT {', '.join(_ROW_COLUMNS)} FROM {location.events_table} "
        "WHERE (actor_id IN {i:Array(String)} OR actor_email IN {e:Array(String)})" + scope,
        parameters={"i": sorted(ids), "e": sorted(emails), "a": record.account or ""},
    ).named_results()
    erased = [erase_event(row, pseudonyms) for row in rows]
    for start in range(0, len(erased), _UPDATE_CHUNK):
        _update(client, location, erased[start : start + _UPDATE_CHUNK])
    event_ids = sorted({row["event_id"] for row in erased})
    if location.rollups and event_ids:
        _erase_in_rollups(client, location, record.account, ids, emails, event_ids)
    return len(event_ids), ids, emails


def _erase_in_rollups(
    client: Client,
    location: StoreLocation,
    account: str | None,
    ids: set[str],
    emails: set[str],
    event_ids: list[str],
) -> None:
    """The rollups that name actors count the person under their clear ids: their rows
    are counted again from the rewritten events (pseudonyms), then the clear ones deleted
    (in that order: meanwhile a facet counts the person twice, never not at all). The
    deleted rows are exactly those the events counted: the person's ids, e-mails and
    account are the rollup's key columns."""
    scope = " AND account_id = {a:String}" if account is not None else ""
    for table, (seconds, columns, _key) in ROLLUPS.items():
        names = [c for c, _ in columns]
        if "actor_id" not in names:
            continue
        listed = ", ".join(names)
        client.command(
            f"INSERT INTO {location.database}.{table} "
            f"SELECT {rollup_unit_sql(seconds)} AS at, {listed}, count() AS n "
            f"FROM {location.events_table} WHERE event_id IN {{ids:Array(String)}} "
            f"GROUP BY at, {listed}",
            parameters={"ids": event_ids},
        )
        client.command(
            f"ALTER TABLE {location.database}.{table} DELETE WHERE "
            "(actor_id IN {i:Array(String)} OR actor_email IN {e:Array(String)})" + scope,
            parameters={"i": sorted(ids), "e": sorted(emails), "a": account or ""},
            settings={"mutations_sync": 2},
        )


def _update(client: Client, location: StoreLocation, rows: list[dict[str, Any]]) -> None:
    """Sets the rewritten columns of ``rows`` (by event id; a twin gets the same)."""
    ids = [row["event_id"] for row in rows]
    parameters: dict[str, Any] = {"ids": ids}
    assignments = []
    for n, column in enumerate(_WRITTEN):
        parameters[f"v{n}"] = [row[column] for row in rows]
        values = f"{{v{n}:Array(String)}}"
        assignments.append(
            f"{column} = transform(event_id, {{ids:Array(String)}}, {values}, {column})"
        )
    sets, where = ", ".join(assignments), "WHERE event_id IN {ids:Array(String)}"
    if location.cluster is None:
        try:
            client.command(
                f"UPDATE {location.storage_table} SET {sets} {where}", parameters=parameters
            )
            return
        except Exception as exc:  # a server without lightweight updates (before 25.7)
            log.warning("lightweight update refused, using a mutation: %s", str(exc)[:200])
    # Every shard's rows (ON CLUSTER), and reads see the change once the mutation is done.
    client.command(
        f"ALTER TABLE {location.storage_table}{location.on_cluster} UPDATE {sets} {where}",
        parameters=parameters,
        settings={"mutations_sync": 2},
    )


# -- dead letters ----------------------------------------------------------------------------


def _letter_covered(
    value: bytes | None, ids: set[str], emails: set[str], account: str | None
) -> bool:
    if not value:
        return False
    try:
        letter = orjson.loads(value)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(letter, dict):
        return False
    if account is not None and letter.get("account_id") != account:
        return False
    return letter.get("actor_id") in ids or letter.get("actor_email") in emails


def erase_dead_letters(
    settings: Settings,
    ids: set[str],
    emails: set[str],
    account: str | None,
    pseudonyms: Pseudonyms,
    timeout_s: float = 60.0,
) -> int:
    """Rewrites the person's letters in every destination's dead-letter topic (see the
    module docstring); returns how many."""
    if not ids and not emails:
        return 0
    config = settings.kafka_client_config()
    admin = AdminClient(dict(config))
    prefix = settings.topics.dlq + "."
    topics = [t for t in admin.list_topics(timeout=timeout_s).topics if t.startswith(prefix)]
    rewritten = 0
    for topic in sorted(topics):
        rewritten += _erase_topic(config, admin, topic, ids, emails, account, pseudonyms, timeout_s)
    return rewritten


def _erase_topic(
    config: dict[str, str],
    admin: AdminClient,
    topic: str,
    ids: set[str],
    emails: set[str],
    account: str | None,
    pseudonyms: Pseudonyms,
    timeout_s: float,
) -> int:
    consumer = kafka_consumer(config, f"authtrail.erasure-reader.{topic}")
    producer = Producer({**config, "acks": "all", "enable.idempotence": True})
    rewritten = 0
    try:
        partitions = consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions
        for partition in sorted(partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s
            )
            if low >= high:
                continue
            records = _read(consumer, topic, partition, low, high, timeout_s)
            covered = [_letter_covered(m.value(), ids, emails, account) for m in records]
            if not any(covered):
                continue
            errors: list[str] = []

            def on_delivery(err: KafkaError | None, _msg: Any, errors: list[str] = errors) -> None:
                if err is not None:
                    errors.append(err.str())

            for message, erase in zip(records, covered, strict=True):
                value = message.value()
                if erase:
                    value = orjson.dumps(erase_event(orjson.loads(value), pseudonyms))
                producer.produce(
                    topic,
                    value=value,
                    key=message.key(),
                    headers=message.headers(),
                    partition=partition,
                    on_delivery=on_delivery,
                )
            if producer.flush(timeout_s) or errors:
                raise RuntimeError(f"{topic}[{partition}]: copying the letters failed: {errors}")
            # The copies are durable: only now are the originals deleted.
            futures = admin.delete_records([TopicPartition(topic, partition, high)])
            for future in futures.values():
                future.result(timeout_s)
            rewritten += sum(covered)
    finally:
        consumer.close()
    return rewritten


def _read(
    consumer: Any, topic: str, partition: int, low: int, high: int, timeout_s: float
) -> list[Any]:
    consumer.assign([TopicPartition(topic, partition, low)])
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < high - low:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{topic}[{partition}]: could not read {low}..{high}")
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error() is not None:
            if message.error().code() != KafkaError._PARTITION_EOF:
                raise RuntimeError(f"{topic}[{partition}]: {message.error().str()}")
            continue
        if message.offset() < high:
            records.append(message)
    return records


# -- the applier -----------------------------------------------------------------------------


def audit_event(record: ErasureRecord) -> bytes:
    """The erasure as an event of the trail: who asked, when, how much was rewritten."""
    applied = record.applied_at or utc_now_ms()
    event: dict[str, Any] = {
        "event_id": f"{record.id}.erased",
        "event_key": ERASED_EVENT_KEY,
        "occurred_at": rfc3339_ms(applied),
        "outcome": "success",
        "actor": {"id": record.requested_by, "type": "user"},
        "attributes": {
            "erasure_id": record.id,
            "subject": record.subject,
            "requested_by": record.requested_by,
            "requested_at": rfc3339_ms(record.requested_at),
            "events": record.events,
            "dead_letters": record.dead_letters,
        },
    }
    if record.account is not None:
        event["account"] = {"id": record.account}
    return orjson.dumps(event)


class ErasureApplier:
    """Applies pending erasures, one consumer group across the ingest workers: for each,
    the store, then the dead letters, then the audit event and the applied record; the
    group's offset is committed after that. A failure is retried after a pause."""

    RETRY_S = 5.0

    def __init__(
        self,
        settings: Settings,
        location: StoreLocation,
        pseudonyms: Pseudonyms | None = None,
        on_applied: Callable[[ErasureRecord], None] | None = None,
    ) -> None:
        self._settings, self._location = settings, location
        self._pseudonyms = pseudonyms or pseudonyms_of(settings)
        self._on_applied = on_applied
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="erasures", daemon=True)

    def start(self) -> ErasureApplier:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def apply(self, client: Client, record: ErasureRecord) -> ErasureRecord:
        """Applies one erasure; returns its applied record (written to the topic)."""
        events, ids, emails = erase_in_store(client, self._location, record, self._pseudonyms)
        letters = erase_dead_letters(self._settings, ids, emails, record.account, self._pseudonyms)
        macs = sorted({*record.subject_macs, *(self._pseudonyms.mac(v) for v in (*ids, *emails))})
        applied = record.model_copy(
            update={
                "subject_macs": macs,
                "state": "applied",
                "applied_at": utc_now_ms(),
                "events": events,
                "dead_letters": letters,
            }
        )
        _produce_audit_event(self._settings, applied)
        _write(self._settings, applied)
        log.info("erasure %s applied: %d events, %d dead letters", record.id, events, letters)
        if self._on_applied is not None:
            self._on_applied(applied)
        return applied

    def _run(self) -> None:
        group = f"{self._settings.topics.prefix}authtrail.erasure-applier"
        consumer = kafka_consumer(self._settings, group)
        consumer.subscribe([self._settings.topics.erasures])
        client: Client | None = None
        try:
            while not self._stop.is_set():
                message = consumer.poll(0.5)
                value = message.value() if message is not None else None
                if message is None or message.error() is not None or value is None:
                    continue
                record = _decode("", value)
                while record is not None and record.state == "pending" and not self._stop.is_set():
                    try:
                        client = client or connect(self._location)
                        self.apply(client, record)
                        break
                    except Exception as exc:
                        log.error("erasure %s failed, retrying: %s", record.id, exc)
                        self._stop.wait(self.RETRY_S)
                if not self._stop.is_set():
                    consumer.commit(message=message, asynchronous=False)
        finally:
            consumer.close()
            if client is not None:
                client.close()


def _produce_audit_event(settings: Settings, record: ErasureRecord) -> None:
    producer = Producer({**settings.kafka_client_config(), "acks": "all"})
    errors: list[str] = []
    producer.produce(
        settings.topics.raw,
        value=audit_event(record),
        key=(record.account or record.id).encode(),
        on_delivery=lambda err, _m: errors.append(err.str()) if err else None,
    )
    if producer.flush(30) or errors:
        raise RuntimeError(f"recording the erasure as an event failed: {errors or 'timed out'}")
