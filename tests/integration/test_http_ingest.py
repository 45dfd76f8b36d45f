"""``POST /api/v1/events`` on a real broker and the real log store: events reach the raw
topic as a Kafka producer would send them, only after the brokers have them; producer
tokens write and cannot read; an Idempotency-Key makes a retry produce nothing; a broker
that does not answer is a 503 with Retry-After."""

from __future__ import annotations

import gzip
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from fastapi.testclient import TestClient

from authtrail.produce import event_key
from infra.secrets import load_keyring
from pipeline.normalize import derive_event_id
from query_api.app import create_app
from query_api.auth import SessionSigner
from query_api.event_writer import EventWriter
from query_api.limits import ApiLimits
from query_api.repository import LogRepository
from query_api.tokens import TokenLog, create_token
from schemas.log_store import StoreLocation
from schemas.settings import Settings
from tests import leaks
from tests.integration.conftest import bearer, free_port


@pytest.fixture(scope="module")
def ingest(
    store: StoreLocation, token_log: TokenLog, api_settings: Settings
) -> Iterator[TestClient]:
    repository = LogRepository(store)
    app = create_app(
        repository,
        token_log,
        SessionSigner(load_keyring(api_settings)),
        limits=ApiLimits(rate=0),
        event_writer=EventWriter(api_settings),
    )
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def producers(api_settings: Settings, token_log: TokenLog) -> dict[str, str]:
    made = {
        "any": create_token(api_settings, "producer", "test producer")[0],
        "acc_9": create_token(api_settings, "producer", "acc_9 producer", "acc_9")[0],
        "viewer": create_token(api_settings, "viewer", "a reader")[0],
        "admin": create_token(api_settings, "admin", "an admin")[0],
    }
    assert token_log.catch_up()
    leaks.register(*made.values())
    return made


def login(account: str = "acc_9", **fields: Any) -> dict[str, Any]:
    return {
        "event_key": "login.completed",
        "occurred_at": "2026-11-30T10:00:00Z",
        "account": {"id": account},
        "actor": {"email": "ann@acme.io"},
        "trace_id": uuid.uuid4().hex,
        **fields,
    }


def raw_records(settings: Settings) -> list[Any]:
    """Every record of the raw topic now (to the partitions' ends)."""
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"t-{uuid.uuid4()}"}
    )
    try:
        topic = settings.topics.raw
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: list[Any] = []
        deadline = time.monotonic() + 30
        while sum(ends.values()) > len(records) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                records.append(message)
        assert sum(ends.values()) == len(records)
        return records
    finally:
        consumer.close()


def by_trace(settings: Settings, traces: set[str]) -> list[Any]:
    """The raw topic's records of these traces, every one written so far."""
    return [r for r in raw_records(settings) if orjson.loads(r.value()).get("trace_id") in traces]


def test_events_reach_the_raw_topic_acknowledged_with_their_ids(
    ingest: TestClient, producers: dict[str, str], api_settings: Settings
) -> None:
    given = login(event_id="given-id-1")
    derived = login(account="acc_7")
    reply = ingest.post("/api/v1/events", json=[given, derived], headers=bearer(producers["any"]))
    assert reply.status_code == 202, reply.text
    assert reply.json() == {
        "accepted": 2,
        "results": [
            {"index": 0, "event_id": "given-id-1"},
            {"index": 1, "event_id": derive_event_id(derived)},
        ],
    }
    # Written before the answer (acks=all): a reader finds them at once.
    records = by_trace(api_settings, {given["trace_id"], derived["trace_id"]})
    assert sorted(orjson.loads(r.value())["trace_id"] for r in records) == sorted(
        [given["trace_id"], derived["trace_id"]]
    )
    for record in records:
        assert record.key() == event_key(record.value())  # the key rule of `produce`


def test_ndjson_and_gzip_are_accepted(
    ingest: TestClient, producers: dict[str, str], api_settings: Settings
) -> None:
    events = [login() for _ in range(3)]
    body = gzip.compress(b"\n".join(orjson.dumps(e) for e in events))
    reply = ingest.post(
        "/api/v1/events",
        content=body,
        headers={
            **bearer(producers["acc_9"]),
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
        },
    )
    assert reply.status_code == 202, reply.text
    assert reply.json()["accepted"] == 3
    assert len(by_trace(api_settings, {e["trace_id"] for e in events})) == 3


def test_a_body_that_is_not_json_is_400_naming_the_line(
    ingest: TestClient, producers: dict[str, str]
) -> None:
    body = orjson.dumps(login()) + b"\n{broken\n"
    reply = ingest.post(
        "/api/v1/events",
        content=body,
        headers={**bearer(producers["any"]), "Content-Type": "application/x-ndjson"},
    )
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["parameter"] == "line 2"


def test_an_account_bound_producer_writes_its_account_only_and_nothing_else(
    ingest: TestClient, producers: dict[str, str], api_settings: Settings
) -> None:
    ours, theirs = login(), login(account="acc_1")
    reply = ingest.post("/api/v1/events", json=[ours, theirs], headers=bearer(producers["acc_9"]))
    assert reply.status_code == 403
    assert reply.json()["errors"][0]["parameter"] == "body[1].account.id"
    marker = login()
    assert (
        ingest.post("/api/v1/events", json=marker, headers=bearer(producers["acc_9"])).status_code
        == 202
    )
    traces = {ours["trace_id"], theirs["trace_id"], marker["trace_id"]}
    # The marker was written after the refused request: none of that request is there.
    records = by_trace(api_settings, traces)
    assert [orjson.loads(r.value())["trace_id"] for r in records] == [marker["trace_id"]]


@pytest.mark.parametrize("who", ["viewer", "admin"])
def test_only_producer_tokens_write(
    ingest: TestClient, producers: dict[str, str], who: str
) -> None:
    reply = ingest.post("/api/v1/events", json=login(), headers=bearer(producers[who]))
    assert reply.status_code == 403
    assert reply.json()["errors"][0]["parameter"] == "role"


def test_producer_tokens_cannot_read_or_sign_in(
    ingest: TestClient, producers: dict[str, str]
) -> None:
    for path in ("/api/v1/logs", "/api/v1/facets/accounts", "/api/v1/views", "/api/v1/session"):
        reply = ingest.get(path, headers=bearer(producers["any"]))
        assert reply.status_code == 403, path
    signed_in = ingest.post("/api/v1/session", json={"token": producers["any"]})
    assert signed_in.status_code == 403
    assert "authtrail_session" not in signed_in.cookies


def test_an_idempotency_key_gives_the_first_answer_and_produces_once(
    ingest: TestClient, producers: dict[str, str], api_settings: Settings
) -> None:
    events = [login(), login()]
    key = f"retry-{uuid.uuid4()}"
    headers = {**bearer(producers["any"]), "Idempotency-Key": key}
    first = ingest.post("/api/v1/events", json=events, headers=headers)
    assert first.status_code == 202
    again = ingest.post("/api/v1/events", json=events, headers=headers)
    assert again.status_code == 202 and again.json() == first.json()
    other_body = ingest.post("/api/v1/events", json=[login()], headers=headers)
    assert other_body.status_code == 422
    assert other_body.json()["errors"][0]["parameter"] == "Idempotency-Key"
    # Another token's same key is its own.
    theirs = ingest.post(
        "/api/v1/events",
        json=[login()],
        headers={**bearer(producers["acc_9"]), "Idempotency-Key": key},
    )
    assert theirs.status_code == 202
    records = by_trace(api_settings, {e["trace_id"] for e in events})
    assert len(records) == 2  # the retry wrote nothing


def test_a_malformed_idempotency_key_is_400(ingest: TestClient, producers: dict[str, str]) -> None:
    reply = ingest.post(
        "/api/v1/events",
        json=login(),
        headers={**bearer(producers["any"]), "Idempotency-Key": "has spaces"},
    )
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["parameter"] == "Idempotency-Key"


def test_a_broker_that_does_not_answer_is_503_with_retry_after(
    store: StoreLocation, token_log: TokenLog, api_settings: Settings, producers: dict[str, str]
) -> None:
    nowhere = api_settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    app = create_app(
        LogRepository(store),
        token_log,
        SessionSigner(load_keyring(api_settings)),
        limits=ApiLimits(rate=0),
        event_writer=EventWriter(nowhere, timeout_s=1.5),
    )
    key = f"down-{uuid.uuid4()}"
    with TestClient(app) as client:
        headers = {**bearer(producers["any"]), "Idempotency-Key": key}
        reply = client.post("/api/v1/events", json=[login()], headers=headers)
        assert reply.status_code == 503
        assert int(reply.headers["Retry-After"]) > 0
        assert reply.json()["errors"][0]["in"] == "broker"
        # Nothing was remembered for the key: the retry is written once the broker is back.
    with TestClient(
        create_app(
            LogRepository(store),
            token_log,
            SessionSigner(load_keyring(api_settings)),
            limits=ApiLimits(rate=0),
            event_writer=EventWriter(api_settings),
        )
    ) as client:
        event = login()
        retried = client.post("/api/v1/events", json=[event], headers=headers)
        assert retried.status_code == 202
        assert len(by_trace(api_settings, {event["trace_id"]})) == 1
