"""Erasing a person (#20 item 2) on a running `authtrail up`: every stored event of theirs,
the destinations' dead letters and their late events carry pseudonyms, and no clear value
is left to find by search, filter, export, the event detail or the dead-letter topic; the
erasure is an audit event of its own and asking twice is one erasure."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from infra.clickhouse.client import migrate
from pipeline.erasure import erase_in_store
from schemas.erasure import ERASED_EVENT_KEY, PSEUDONYM_PREFIX, ErasureRecord, Pseudonyms
from schemas.log_store import StoreLocation
from tests.integration.conftest import Authtrail, consume_all, event, run_cli

PERSON_ID, PERSON_EMAIL = "usr_pia", "Pia.Person@example.org"
PERSON_IP, PERSON_UA = "203.0.113.77", "PiaBrowser/9.1 (PiaBook; secret build 4471)"
OTHER = {"id": "usr_olaf", "email": "olaf@example.org"}
CLEAR = (PERSON_ID, PERSON_EMAIL, PERSON_EMAIL.lower(), PERSON_IP, PERSON_UA)
DESTINATION_DLQ = "auth-events.dlq.dst_erasuretest"


def person_event(account: str, with_id: bool = True, **more: Any) -> bytes:
    actor: dict[str, Any] = {"email": PERSON_EMAIL}
    if with_id:
        actor["id"] = PERSON_ID
    return event(
        "login.completed",
        account={"id": account},
        actor=actor,
        ip=PERSON_IP,
        user_agent=PERSON_UA,
        attributes={"contact": PERSON_EMAIL, "nested": [{"ip": PERSON_IP}], "plan": "pro"},
        **more,
    )


def other_event(account: str) -> bytes:
    return event(
        "login.completed",
        account={"id": account},
        actor=OTHER,
        ip="198.51.100.1",
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
    )


def assert_no_clear_value(text: str, where: str) -> None:
    for value in CLEAR:
        assert value not in text, f"{value!r} is still in {where}"


def letters(authtrail: Authtrail, bootstrap: str, topic: str) -> None:
    """Dead letters of a destination: the normalized events it could not deliver."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap})
    for item in authtrail.logs(limit=500)["items"]:
        detail = httpx.get(
            f"{authtrail.api}/api/v1/logs/{item['event_id']}", headers=authtrail.headers, timeout=10
        ).json()
        producer.produce(topic, value=orjson.dumps(detail), headers=[("authtrail-reason", b"400")])
    assert producer.flush(30) == 0


def api(authtrail: Authtrail, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(
        method, f"{authtrail.api}/api/v1{path}", headers=authtrail.headers, timeout=120, **kw
    )


@pytest.mark.timeout(400)
def test_an_erased_person_leaves_no_clear_value(authtrail: Authtrail) -> None:
    authtrail.start()
    bootstrap = authtrail.env["AUTHTRAIL_KAFKA_BOOTSTRAP"]
    prefix = authtrail.env["AUTHTRAIL_TOPIC_PREFIX"]
    mine = [person_event("acc_1"), person_event("acc_2"), person_event("acc_1", with_id=False)]
    theirs = [other_event("acc_1"), other_event("acc_2")]
    assert "5 accepted" in authtrail.produce([*mine, *theirs]).stdout
    authtrail.wait_for_rows(5)
    letters(authtrail, bootstrap, prefix + DESTINATION_DLQ)

    reply = api(authtrail, "POST", "/erasures", json={"user": PERSON_ID})
    assert reply.status_code == 201, reply.text
    erasure = reply.json()
    assert erasure["state"] == "applied"
    # The e-mail-only event is the same person's (the e-mail was seen with the id).
    assert (erasure["events"], erasure["dead_letters"]) == (3, 3)
    assert erasure["subject"].startswith(PSEUDONYM_PREFIX)
    assert_no_clear_value(reply.text, "the erasure's answer")

    # Search every field, filter, export, the event detail: nothing clear, at once.
    for q in (
        PERSON_ID,
        PERSON_EMAIL,
        PERSON_IP,
        "PiaBrowser",
        f'ua:"{PERSON_UA}"',
        f"ip:{PERSON_IP}",
    ):
        assert authtrail.logs(q=q)["items"] == [], q
    for user in (PERSON_ID, PERSON_EMAIL):
        assert authtrail.logs(user=user)["items"] == [], user
    everything = api(authtrail, "GET", "/logs", params={"limit": 500})
    items = [i for i in everything.json()["items"] if i["event_key"] != ERASED_EVENT_KEY]
    assert len(items) == 5
    assert_no_clear_value(everything.text, "GET /logs")
    for form in ("csv", "ndjson"):
        export = api(authtrail, "GET", "/logs/export", params={"format": form})
        assert export.status_code == 200
        assert_no_clear_value(export.text, f"the {form} export")
    erased = [i for i in items if i["actor_id"] != OTHER["id"]]
    assert len(erased) == 3
    pseudonyms = set()
    for item in erased:
        detail = api(authtrail, "GET", f"/logs/{item['event_id']}")
        assert_no_clear_value(detail.text, "the event detail")
        body = detail.json()
        assert body["ip"].startswith(PSEUDONYM_PREFIX) and body["user_agent"].startswith(
            PSEUDONYM_PREFIX
        )
        assert body["attributes"]["plan"] == "pro"  # what is not the person's stays
        pseudonyms.add(body["actor_email"])
    assert len(pseudonyms) == 1  # one person, one pseudonym: the trail still connects
    # The other person's events are untouched.
    assert len(authtrail.logs(user=OTHER["id"])["items"]) == 2

    dead = consume_all(bootstrap, prefix + DESTINATION_DLQ, 5)
    assert len(dead) == 5
    for record in dead:
        assert_no_clear_value(record.value().decode(), "the destination's dead letters")
    assert {orjson.loads(r.value())["actor_id"] for r in dead} >= {OTHER["id"]}

    # Recorded as an audit event, once: asking again is the same erasure.
    again = api(authtrail, "POST", "/erasures", json={"user": PERSON_ID})
    assert again.status_code == 200 and again.json()["id"] == erasure["id"]
    listed = api(authtrail, "GET", "/erasures").json()
    assert [e["id"] for e in listed] == [erasure["id"]]
    audit = wait_for(authtrail, lambda: authtrail.logs(type=ERASED_EVENT_KEY)["items"], 1)
    detail = api(authtrail, "GET", f"/logs/{audit[0]['event_id']}").json()
    asked_by = "first admin (authtrail up)"  # the token's name
    assert detail["actor_id"] == detail["attributes"]["requested_by"] == asked_by
    assert (
        detail["attributes"]["events"] == 3 and detail["attributes"]["erasure_id"] == erasure["id"]
    )

    # A late event of the person, by id or by e-mail alone: erased at ingest.
    late = [person_event("acc_3"), person_event("acc_3", with_id=False)]
    assert "2 accepted" in authtrail.produce(late).stdout
    wait_for(authtrail, lambda: authtrail.logs(account="acc_3")["items"], 2)
    assert_no_clear_value(api(authtrail, "GET", "/logs", params={"limit": 500}).text, "late")
    time.sleep(1)
    assert len(authtrail.logs(type=ERASED_EVENT_KEY)["items"]) == 1
    counters = httpx.get(f"{authtrail.api}/healthz", timeout=10).json()["ingest"]
    assert counters["erased_at_ingest"] == 2

    # The CLI says the same of the same person.
    cli = run_cli(authtrail.env, "erase", "--user", PERSON_ID)
    assert cli.returncode == 0, cli.stderr
    assert erasure["id"] in cli.stdout and "erased before" in cli.stdout
    assert_no_clear_value(authtrail.log(), "the log")
    assert authtrail.stop() == 0


def wait_for(authtrail: Authtrail, read: Any, count: int, timeout: float = 60) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = read()
        if len(found) >= count:
            return list(found)
        assert time.monotonic() < deadline, authtrail.log()
        time.sleep(0.5)


def test_the_store_finds_the_person_by_the_same_hashes_as_python(
    own_database: tuple[StoreLocation, Client],
) -> None:
    """The store computes the keyed hashes itself (the erasure holds no identifier): its
    HMAC must be ``Pseudonyms.mac``, case rules included, or a person would be missed."""
    location, client = own_database
    migrate(client, location, 90)
    now = datetime.now(UTC)
    rows = [
        ["e1", "Auth0|Ann@X.io", "", "acc_1"],  # an id with '@': compared without case
        ["e2", "", "ann@x.io", "acc_2"],
        ["e3", "usr_Other", "other@x.io", "acc_1"],
    ]
    client.insert(
        location.events_table,
        [[e, i, m, a, now, now, "login.completed", "{}"] for e, i, m, a in rows],
        column_names=[
            "event_id",
            "actor_id",
            "actor_email",
            "account_id",
            "occurred_at",
            "received_at",
            "event_key",
            "raw",
        ],
    )
    keys = Pseudonyms(b"s" * 32)
    asked = ErasureRecord(
        id="er_0123456789abcdef",
        subject="erased:x",
        subject_macs=[keys.mac("auth0|ann@x.io"), keys.mac("ANN@X.IO")],
        requested_by="t",
        requested_at=now,
    )
    count, ids, emails = erase_in_store(client, location, asked, keys)
    assert (count, ids, emails) == (2, {"Auth0|Ann@X.io"}, {"ann@x.io"})
    left = client.query(
        f"SELECT event_id, actor_id, actor_email FROM {location.events_table} ORDER BY event_id"
    ).result_rows
    assert left[2] == ("e3", "usr_Other", "other@x.io")
    assert all(v.startswith(PSEUDONYM_PREFIX) for row in left[:2] for v in row[1:] if v)
