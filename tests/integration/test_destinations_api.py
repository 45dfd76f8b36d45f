"""The Stream API: destination types, destinations CRUD, pause/resume, status and "send test
event", against the real broker (the destinations topic) and the local Datadog and Splunk
receivers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from schemas.settings import Settings
from tests.integration.aws import ACCESS_KEY, REGION, SECRET_KEY, Aws
from tests.integration.streaming import Stream, wait_until
from tests.platform_fakes import DatadogReceiver, SplunkReceiver

DD_KEY = "0123456789abcdef0123456789abcdef"
HEC = "12345678-1234-1234-1234-123456789012"


@pytest.fixture(scope="module")
def client(api_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(api_app) as test_client:
        yield test_client


@pytest.fixture()
def datadog() -> Iterator[DatadogReceiver]:
    with DatadogReceiver(DD_KEY) as receiver:
        yield receiver


def auth(tokens: dict[str, str], role: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[role]}"}


def datadog_body(receiver: DatadogReceiver, **settings: Any) -> dict[str, Any]:
    return {
        "platform": "datadog",
        "name": "Datadog EU",
        "settings": {"api_key": DD_KEY, "endpoint": receiver.url, **settings},
        "filter": {"outcomes": ["failure"]},
    }


def test_destination_types_describe_every_platform(
    client: TestClient, tokens: dict[str, str]
) -> None:
    reply = client.get("/api/v1/destination-types", headers=auth(tokens, "viewer"))
    assert reply.status_code == 200
    types = {t["platform"]: t for t in reply.json()}
    assert set(types) == {
        "datadog",
        "eventbridge",
        "splunk",
        "sumologic",
        "coralogix",
        "s3",
        "webhook",
    }
    assert types["s3"]["address"] == ["endpoint", "region", "bucket"]
    datadog = types["datadog"]
    assert datadog["secrets"] == ["api_key"]
    assert datadog["settings_schema"]["properties"]["api_key"]["writeOnly"] is True
    assert "site" in datadog["settings_schema"]["properties"]
    assert client.get(datadog["icon"]).headers["content-type"].startswith("image/svg")
    assert types["sumologic"]["secrets"] == ["url"]
    assert datadog["address"] == ["endpoint", "site"]
    assert types["splunk"]["address"] == ["endpoint", "url", "verify_tls"]


def test_a_stored_secret_is_never_sent_to_a_new_address(
    client: TestClient, tokens: dict[str, str], datadog: DatadogReceiver
) -> None:
    created = client.post("/api/v1/destinations", json=datadog_body(datadog), headers=auth(tokens))
    destination_id = created.json()["id"]
    path = f"/api/v1/destinations/{destination_id}"
    with DatadogReceiver(DD_KEY) as elsewhere:
        for change in ({"endpoint": elsewhere.url}, {"endpoint": elsewhere.url, "api_key": None}):
            moved = client.patch(path, json={"settings": change}, headers=auth(tokens))
            assert moved.status_code == 422, moved.text
            error = moved.json()["errors"][0]
            assert error["parameter"] == "api_key"
            assert error["message"].startswith("must be given again: endpoint changed")
        # Nothing was stored: a test event still goes where the key was saved for.
        assert client.get(path, headers=auth(tokens)).json()["settings"]["endpoint"] == datadog.url
        sent = client.post(f"{path}/test", headers=auth(tokens))
        assert sent.json()["ok"] is True, sent.text
        assert elsewhere.store.events() == []
        assert len(datadog.store.events()) == 1

        moved = client.patch(
            path,
            json={"settings": {"endpoint": elsewhere.url, "api_key": DD_KEY}},
            headers=auth(tokens),
        )
        assert moved.status_code == 200, moved.text
        assert client.post(f"{path}/test", headers=auth(tokens)).json()["ok"] is True
        assert len(elsewhere.store.events()) == 1
    assert client.delete(path, headers=auth(tokens)).status_code == 204


def test_create_read_update_delete(
    client: TestClient, tokens: dict[str, str], datadog: DatadogReceiver
) -> None:
    created = client.post("/api/v1/destinations", json=datadog_body(datadog), headers=auth(tokens))
    assert created.status_code == 201, created.text
    body = created.json()
    assert DD_KEY not in created.text
    assert body["settings"]["api_key"] == "••••" + DD_KEY[-4:]
    assert body["filter"]["outcomes"] == ["failure"]
    assert body["consumer_group"] == f"authtrail.connector.{body['id']}"
    destination_id = body["id"]

    listed = client.get("/api/v1/destinations", headers=auth(tokens, "viewer"))
    assert destination_id in {d["id"] for d in listed.json()}
    assert DD_KEY not in listed.text

    # A change that leaves the secret out keeps it.
    patched = client.patch(
        f"/api/v1/destinations/{destination_id}",
        json={"name": "Datadog EU (auth)", "settings": {"service": "auth-audit"}},
        headers=auth(tokens),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["settings"]["service"] == "auth-audit"
    assert patched.json()["settings"]["api_key"] == "••••" + DD_KEY[-4:]
    assert patched.json()["created_at"] == body["created_at"]
    sent = client.post(f"/api/v1/destinations/{destination_id}/test", headers=auth(tokens))
    assert sent.json()["ok"] is True, sent.text  # the kept key still works

    paused = client.post(f"/api/v1/destinations/{destination_id}/pause", headers=auth(tokens))
    assert paused.json()["paused"] is True
    status = client.get(f"/api/v1/destinations/{destination_id}/status", headers=auth(tokens))
    assert status.status_code == 200
    assert status.json()["state"] == "paused"
    assert status.json()["lag"] is not None
    resumed = client.post(f"/api/v1/destinations/{destination_id}/resume", headers=auth(tokens))
    assert resumed.json()["paused"] is False

    deleted = client.delete(f"/api/v1/destinations/{destination_id}", headers=auth(tokens))
    assert deleted.status_code == 204
    gone = client.get(f"/api/v1/destinations/{destination_id}", headers=auth(tokens))
    assert gone.status_code == 404


@pytest.mark.parametrize(
    ("change", "parameter"),
    [
        ({"settings": {"api_key": "short"}}, "api_key"),
        ({"settings": {"site": "datadoghq.moon"}}, "site"),
        ({"settings": {"colour": "blue"}}, "colour"),
        ({"filter": {"outcomes": ["maybe"]}}, "outcomes"),
        ({"platform": "pagerduty"}, "platform"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_destinations_name_the_field(
    client: TestClient,
    tokens: dict[str, str],
    datadog: DatadogReceiver,
    change: dict[str, Any],
    parameter: str,
) -> None:
    body = datadog_body(datadog)
    for key, value in change.items():
        body[key] = {**body[key], **value} if isinstance(value, dict) else value
    reply = client.post("/api/v1/destinations", json=body, headers=auth(tokens))
    assert reply.status_code == 422, reply.text
    assert parameter in reply.json()["errors"][0]["parameter"]
    assert "short" not in reply.text  # a secret's value is never echoed


def test_viewers_cannot_change_anything(
    client: TestClient, tokens: dict[str, str], datadog: DatadogReceiver
) -> None:
    viewer = auth(tokens, "viewer")
    assert (
        client.post("/api/v1/destinations", json=datadog_body(datadog), headers=viewer).status_code
        == 403
    )
    created = client.post("/api/v1/destinations", json=datadog_body(datadog), headers=auth(tokens))
    destination_id = created.json()["id"]
    for method, path in [
        ("patch", ""),
        ("delete", ""),
        ("post", "/pause"),
        ("post", "/resume"),
        ("post", "/test"),
        ("post", "/replay"),
        ("post", "/dead-letters/redrive"),
    ]:
        reply = client.request(
            method.upper(), f"/api/v1/destinations/{destination_id}{path}", headers=viewer, json={}
        )
        assert reply.status_code == 403, (method, path, reply.text)
    assert client.get(f"/api/v1/destinations/{destination_id}", headers=viewer).status_code == 200
    assert client.get("/api/v1/destinations").status_code == 401


def test_send_test_event_shows_the_platform_reply(
    client: TestClient, tokens: dict[str, str], datadog: DatadogReceiver
) -> None:
    # Before saving: the settings as the form has them.
    unsaved = client.post(
        "/api/v1/destination-types/datadog/test", json=datadog_body(datadog), headers=auth(tokens)
    )
    assert unsaved.status_code == 200, unsaved.text
    reply = unsaved.json()
    assert reply["ok"] is True and reply["status"] == 202
    assert datadog.store.wait_for(1, timeout=5)
    log = datadog.store.events()[0]
    assert log["authtrail"]["event_key"] == "authtrail.test"
    assert log["authtrail"]["event_id"] == reply["event_id"]

    wrong_key = datadog_body(datadog, api_key="f" * 32)
    refused = client.post(
        "/api/v1/destination-types/datadog/test", json=wrong_key, headers=auth(tokens)
    ).json()
    assert refused["ok"] is False and refused["result"] == "auth" and refused["status"] == 403
    assert "f" * 32 not in str(refused)

    datadog.faults.throttle(1, retry_after=3)
    throttled = client.post(
        "/api/v1/destination-types/datadog/test", json=datadog_body(datadog), headers=auth(tokens)
    ).json()
    assert throttled["result"] == "retry" and throttled["status"] == 429


def test_send_test_event_to_splunk_with_its_codes(
    client: TestClient, tokens: dict[str, str]
) -> None:
    with SplunkReceiver(HEC) as splunk:
        body = {
            "platform": "splunk",
            "name": "SIEM",
            "settings": {"url": "https://splunk:8088", "endpoint": splunk.url, "token": HEC},
        }
        ok = client.post("/api/v1/destination-types/splunk/test", json=body, headers=auth(tokens))
        assert ok.json()["ok"] is True and ok.json()["code"] == "0", ok.text
        body["settings"]["token"] = "00000000-0000-0000-0000-000000000000"
        refused = client.post(
            "/api/v1/destination-types/splunk/test", json=body, headers=auth(tokens)
        ).json()
        assert refused["result"] == "auth" and refused["code"] in {"3", "4"}


@pytest.fixture()
def stream(api_settings: Settings) -> Iterator[Stream]:
    """Connectors running on the API's topics."""
    running = Stream(api_settings.kafka_bootstrap or "", api_settings.data_dir, api_settings)
    running.start()
    yield running
    running.close()


def test_replay_dead_letters_and_redrive(
    client: TestClient, tokens: dict[str, str], datadog: DatadogReceiver, stream: Stream
) -> None:
    datadog.faults.reject_marker("POISON-PILL")
    body = datadog_body(datadog)
    body["filter"] = {}
    destination_id = client.post("/api/v1/destinations", json=body, headers=auth(tokens)).json()[
        "id"
    ]
    first = stream.produce(30)
    poison = stream.produce(3, reason="POISON-PILL")
    assert wait_until(
        lambda: (
            {e["event_id"] for e in first}
            <= {log["authtrail"]["event_id"] for log in datadog.store.events()}
        )
    )
    # The refused events are listed, page by page, with the platform's reply.
    assert wait_until(
        lambda: (
            len(
                client.get(
                    f"/api/v1/destinations/{destination_id}/dead-letters", headers=auth(tokens)
                ).json()["items"]
            )
            == 3
        )
    )
    page1 = client.get(
        f"/api/v1/destinations/{destination_id}/dead-letters?limit=2",
        headers=auth(tokens, "viewer"),
    ).json()
    assert len(page1["items"]) == 2 and page1["next_cursor"]
    page2 = client.get(
        f"/api/v1/destinations/{destination_id}/dead-letters",
        params={"limit": 2, "cursor": page1["next_cursor"]},
        headers=auth(tokens),
    ).json()
    assert len(page2["items"]) == 1 and page2["next_cursor"] is None
    items = page1["items"] + page2["items"]
    assert {i["event"]["event_id"] for i in items} == {e["event_id"] for e in poison}
    assert items[0]["platform_status"] == "400" and "refused" in items[0]["reason"]
    bad = client.get(
        f"/api/v1/destinations/{destination_id}/dead-letters?cursor=%%%", headers=auth(tokens)
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["parameter"] == "cursor"

    # Redrive after the platform is fixed: the three arrive; a second redrive has nothing.
    datadog.faults.reject_marker(None)
    redriven = client.post(
        f"/api/v1/destinations/{destination_id}/dead-letters/redrive", headers=auth(tokens)
    )
    assert redriven.status_code == 200, redriven.text
    assert redriven.json() == {
        "redriven": 3,
        "delivered": 3,
        "dead_lettered_again": 0,
        "remaining": 0,
    }
    received = {log["authtrail"]["event_id"] for log in datadog.store.events()}
    assert {e["event_id"] for e in poison} <= received
    again = client.post(
        f"/api/v1/destinations/{destination_id}/dead-letters/redrive", headers=auth(tokens)
    ).json()
    assert again["redriven"] == 0

    # Paused, nothing is delivered; resumed, what came meanwhile arrives.
    client.post(f"/api/v1/destinations/{destination_id}/pause", headers=auth(tokens))
    time.sleep(2)  # the connectors see the pause
    delivered = len(datadog.store.events())
    meanwhile = stream.produce(5)
    time.sleep(2)
    assert len(datadog.store.events()) == delivered
    client.post(f"/api/v1/destinations/{destination_id}/resume", headers=auth(tokens))
    assert wait_until(
        lambda: (
            {e["event_id"] for e in meanwhile}
            <= {log["authtrail"]["event_id"] for log in datadog.store.events()}
        )
    )

    # Replay from before the first events: every one of them arrives again.
    before = len(datadog.store.events())
    replayed = client.post(
        f"/api/v1/destinations/{destination_id}/replay",
        json={"from": "2000-01-01T00:00:00Z"},
        headers=auth(tokens),
    )
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["events"] >= 38
    assert datadog.store.wait_for(before + 38, timeout=60)
    again_ids = [log["authtrail"]["event_id"] for log in datadog.store.events()[before:]]
    assert {e["event_id"] for e in first + poison} <= set(again_ids)
    shown = client.get(f"/api/v1/destinations/{destination_id}", headers=auth(tokens)).json()
    assert shown["paused"] is False  # paused for the move only
    invalid = client.post(
        f"/api/v1/destinations/{destination_id}/replay",
        json={"from": "yesterday"},
        headers=auth(tokens),
    )
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["parameter"] == "from"


def test_send_test_event_to_eventbridge(
    client: TestClient, tokens: dict[str, str], aws: Aws
) -> None:
    queue = aws.queue(f"api-{uuid.uuid4().hex[:6]}")
    bus = f"api-{uuid.uuid4().hex[:6]}"
    aws.bus(bus, queue)
    settings = {
        "region": REGION,
        "event_bus": bus,
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        "endpoint": aws.url,
    }
    body = {"platform": "eventbridge", "name": "Bus", "settings": settings}
    reply = client.post(
        "/api/v1/destination-types/eventbridge/test", json=body, headers=auth(tokens)
    ).json()
    assert reply["ok"] is True, reply
    delivered = aws.receive(queue, 1)
    assert delivered[0]["detail"]["event_id"] == reply["event_id"]
    assert delivered[0]["detail-type"] == "authtrail test event"
    missing = {**body, "settings": {**settings, "event_bus": "no-such-bus"}}
    refused = client.post(
        "/api/v1/destination-types/eventbridge/test", json=missing, headers=auth(tokens)
    ).json()
    assert refused["ok"] is False and refused["code"] == "ResourceNotFoundException"
    assert SECRET_KEY not in str(refused)
