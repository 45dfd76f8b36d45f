"""End to end through the real broker and chDB: raw topic -> faust -> log store -> API."""

from __future__ import annotations

import time
import uuid

import httpx
import orjson

from schemas import topics
from tests.expected import SEED_EVENTS
from tests.integration.conftest import Authtrail, consume_all, event, run_cli

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
ACME = {"id": "acc_acme", "name": "Acme"}
ANA = {"id": "usr_ana", "email": "ana@acme.io", "type": "user"}


def test_seed_events_read_back_from_the_api(authtrail: Authtrail) -> None:
    authtrail.start()
    lines = [
        event(
            key,
            account=ACME,
            actor=ANA,
            ip="99.81.198.187",
            user_agent=CHROME,
            trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        )
        for key in SEED_EVENTS
    ]
    no_account = event("login.failed", actor=ANA, reason="unknown_tenant")
    no_actor = event("oidc.flow.started", account=ACME, ip="8.8.8.8")
    produced = authtrail.produce([*lines, no_account, no_actor])
    assert produced.returncode == 0 and "9 accepted, 0 failed" in produced.stdout, produced

    items = authtrail.wait_for_rows(9)
    by_id = {item["event_id"]: item for item in items}
    for line in lines:
        sent = orjson.loads(line)
        row = by_id[sent["event_id"]]
        assert (row["description"], row["outcome"]) == SEED_EVENTS[sent["event_key"]]
        assert (row["account_id"], row["account_display"]) == ("acc_acme", "Acme")
        assert (row["actor_display"], row["actor_type"]) == ("ana@acme.io", "user")
        assert (row["ip"], row["country"]) == ("99.81.198.187", "IE")
        assert row["ua_browser"] == "Chrome 130" and row["ua_os"].startswith("Windows")
        assert row["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert row["occurred_at"].endswith("Z")
    dash = by_id[orjson.loads(no_account)["event_id"]]
    assert (dash["account_id"], dash["account_display"]) == (None, "-")
    anonymous = by_id[orjson.loads(no_actor)["event_id"]]
    assert (anonymous["actor_display"], anonymous["actor_type"]) == ("anonymous", "anonymous")

    # Newest first, and the normalized topic carries the same events.
    stamps = [item["occurred_at"] for item in items]
    assert stamps == sorted(stamps, reverse=True)
    normalized = consume_all(
        authtrail.env["AUTHTRAIL_KAFKA_BOOTSTRAP"],
        authtrail.env["AUTHTRAIL_TOPIC_PREFIX"] + topics.NORMALIZED,
        9,
    )
    assert {orjson.loads(m.value())["event_id"] for m in normalized} == set(by_id)
    metrics = httpx.get(f"{authtrail.api}/metrics/").text
    assert "authtrail_ingest_stored_total 9.0" in metrics
    assert authtrail.stop() == 0


def test_malformed_events_go_to_the_dlq_with_a_reason(authtrail: Authtrail) -> None:
    authtrail.start()
    good_before = event("login.completed", account=ACME)
    good_after = event("login.failed", account=ACME)
    bad = [
        b"this is not json",
        orjson.dumps({"event_id": str(uuid.uuid4()), "occurred_at": 1795683346000}),
        orjson.dumps({"event_key": "login.completed", "occurred_at": "26/11/2026 12:00"}),
    ]
    produced = authtrail.produce([good_before, *bad, good_after])
    assert "5 accepted" in produced.stdout

    items = authtrail.wait_for_rows(2)
    assert {i["event_id"] for i in items} == {
        orjson.loads(good_before)["event_id"],
        orjson.loads(good_after)["event_id"],
    }
    dlq = consume_all(
        authtrail.env["AUTHTRAIL_KAFKA_BOOTSTRAP"],
        authtrail.env["AUTHTRAIL_TOPIC_PREFIX"] + topics.DLQ,
        3,
    )
    by_value = {m.value(): dict(m.headers()) for m in dlq}
    assert set(by_value) == set(bad)  # the original bytes, untouched
    assert b"not valid JSON" in by_value[bad[0]][topics.DLQ_REASON_HEADER]
    assert b"event_key: Field required" in by_value[bad[1]][topics.DLQ_REASON_HEADER]
    assert by_value[bad[2]][topics.DLQ_FIELD_HEADER] == b"occurred_at"
    for headers in by_value.values():
        assert headers[topics.DLQ_SOURCE_HEADER].startswith(
            (authtrail.env["AUTHTRAIL_TOPIC_PREFIX"] + topics.RAW).encode()
        )
    health = httpx.get(f"{authtrail.api}/healthz").json()
    assert health["ingest"]["dead_lettered"] == 3

    shown = run_cli(authtrail.env, "dlq", "show")
    assert "3 dead letter(s)" in shown.stdout and "no UTC offset" not in shown.stdout
    assert "event_key: Field required" in shown.stdout
    # Replaying re-produces each dead letter once; still invalid, they dead-letter again,
    # and the next replay takes only those three new ones (the replay group committed).
    assert "3 replayed, 3 accepted" in run_cli(authtrail.env, "dlq", "replay").stdout
    consume_all(
        authtrail.env["AUTHTRAIL_KAFKA_BOOTSTRAP"],
        authtrail.env["AUTHTRAIL_TOPIC_PREFIX"] + topics.DLQ,
        6,
    )
    assert "3 replayed, 3 accepted" in run_cli(authtrail.env, "dlq", "replay").stdout
    assert authtrail.stop() == 0


def test_the_same_event_twice_appears_once(authtrail: Authtrail) -> None:
    authtrail.start()
    twice = event("login.completed", account=ACME, actor=ANA)
    without_id = orjson.dumps(
        {"event_key": "logout.completed", "ts": int(time.time()), "account_id": "acc_acme"}
    )
    authtrail.produce([twice, without_id])
    authtrail.wait_for_rows(2)
    authtrail.produce([twice, without_id, event("login.completed", account=ACME)])
    time.sleep(1.5)
    items = authtrail.wait_for_rows(3)
    assert len(items) == 3
    ids = [i["event_id"] for i in items]
    assert ids.count(orjson.loads(twice)["event_id"]) == 1

    # Over HTTP as well: the event without an id, sent again, is the same stored event;
    # the id the answer gives is the one the store keeps.
    created = run_cli(authtrail.env, "token", "create", "--role", "producer")
    assert created.returncode == 0, created.stderr
    producer = {"Authorization": f"Bearer {created.stdout.strip()}"}
    fresh = orjson.loads(event("login.failed", account=ACME, actor=ANA))
    del fresh["event_id"]
    for _ in range(2):
        reply = httpx.post(
            f"{authtrail.api}/api/v1/events",
            content=b"\n".join([without_id, orjson.dumps(fresh)]),
            headers={**producer, "Content-Type": "application/x-ndjson"},
            timeout=30,
        )
        assert reply.status_code == 202, reply.text
    answered = [r["event_id"] for r in reply.json()["results"]]
    assert answered[0] in ids
    items = authtrail.wait_for_rows(4)
    time.sleep(1.5)
    items = authtrail.wait_for_rows(4)
    assert sorted(i["event_id"] for i in items) == sorted([*ids, answered[1]])
    assert authtrail.stop() == 0
