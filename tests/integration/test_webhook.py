"""The webhook destination end to end: the API makes and shows its signing secret once,
batches arrive signed (verified by the ``standardwebhooks`` package in the receiver), a
retried batch keeps its ``webhook-id``, a rotation signs with both secrets for its grace
and then only with the new one, and 410 stops the destination until the endpoint is back.
The generic platform cases (faults, dead letters, credentials) are in test_platforms.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from schemas.destinations import Destination, updated_destination
from schemas.platforms import WebhookSettings
from schemas.standard_webhooks import new_secret
from tests import leaks
from tests.integration.streaming import Stream, wait_until
from tests.platform_fakes.webhook import WebhookReceiver

API_KEY = "hk_live_7f3a9c2e41d84b06"
leaks.register(API_KEY)


@pytest.fixture(scope="module")
def client(api_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(api_app) as test_client:
        yield test_client


@pytest.fixture()
def stream(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stream]:
    """Connectors on topics of their own: each test sees only its events."""
    running = Stream(kafka_bootstrap, tmp_path)
    running.start()
    yield running
    running.close()


def admin(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['admin']}"}


def create(client: TestClient, tokens: dict[str, str], **settings: Any) -> dict[str, Any]:
    reply = client.post(
        "/api/v1/destinations",
        json={"platform": "webhook", "name": "Audit hook", "settings": settings},
        headers=admin(tokens),
    )
    assert reply.status_code == 201, reply.text
    created: dict[str, Any] = reply.json()
    return created


def test_secret_is_made_shown_once_and_rotated(client: TestClient, tokens: dict[str, str]) -> None:
    created = create(client, tokens, url="https://hooks.example/in", headers={"X-Api-Key": API_KEY})
    secret = created["generated_secrets"]["secret"]
    leaks.register(secret)
    assert secret.startswith("whsec_")
    assert created["settings"]["secret"] == f"••••{secret[-4:]}"
    assert created["settings"]["headers"] == {"X-Api-Key": "••••"}
    shown = client.get(f"/api/v1/destinations/{created['id']}", headers=admin(tokens)).json()
    assert shown["generated_secrets"] is None
    assert secret not in str(shown) and API_KEY not in str(shown)

    rotated = client.post(
        f"/api/v1/destinations/{created['id']}/rotate-secret",
        json={"grace_seconds": 3600},
        headers=admin(tokens),
    ).json()
    fresh = rotated["generated_secrets"]["secret"]
    leaks.register(fresh)
    assert fresh != secret and fresh.startswith("whsec_")
    assert [p["secret"] for p in rotated["settings"]["previous_secrets"]] == ["••••"]
    bad = client.post(
        f"/api/v1/destinations/{created['id']}/rotate-secret",
        json={"secret": "not-a-secret"},
        headers=admin(tokens),
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["parameter"] == "secret"
    given = create(client, tokens, url="https://hooks.example/in", secret=new_secret())
    assert given["generated_secrets"] is None  # a secret given is not echoed

    types = client.get("/api/v1/destination-types", headers=admin(tokens)).json()
    webhook = next(t for t in types if t["platform"] == "webhook")
    assert webhook["generated"] == ["secret"]
    assert "previous_secrets" not in webhook["settings_schema"]["properties"]


def test_batches_arrive_signed_and_a_retry_keeps_its_id(stream: Stream) -> None:
    secret = new_secret()
    with WebhookReceiver([secret], required_headers={"X-Api-Key": API_KEY}) as receiver:
        stream.store.add(
            "webhook",
            "ndjson hook",
            {
                "url": receiver.endpoint,
                "secret": secret,
                "headers": f"X-Api-Key: {API_KEY}",
                "format": "ndjson",
                "max_events": "40",
            },
        )
        receiver.faults.fail_next(1, 503)
        events = stream.produce(200)
        assert receiver.store.wait_for(200, timeout=60)
        assert sorted(e["event_id"] for e in receiver.store.events()) == sorted(
            e["event_id"] for e in events
        )
        assert all(len(body.splitlines()) <= 40 for body in receiver.bodies)
        failed = [a for a in receiver.attempts if a.status == 503]
        assert len(failed) == 1
        again = [a for a in receiver.attempts if a.msg_id == failed[0].msg_id]
        assert [a.status for a in again] == [503, 204]
        assert again[1].timestamp >= again[0].timestamp  # signed afresh


def test_rotation_signs_with_both_for_the_grace_then_the_new_one(stream: Stream) -> None:
    old = new_secret()
    with WebhookReceiver([old]) as receiver:
        destination = stream.store.add(
            "webhook", "rotating", {"url": receiver.endpoint, "secret": old}
        )
        stream.produce(10)
        assert receiver.store.wait_for(10, timeout=60)
        settings = destination.settings
        assert isinstance(settings, WebhookSettings)
        rotated = settings.rotated(time.time(), grace_s=3600)
        new = rotated.secret.get_secret_value()
        running_with(stream, destination.model_copy(update={"settings": rotated}))
        stream.produce(10)  # a receiver not yet rotated still verifies
        assert receiver.store.wait_for(20, timeout=60)
        receiver.use_secrets([new])  # nor does one rotated already refuse anything
        stream.produce(10)
        assert receiver.store.wait_for(30, timeout=60)
        assert all(len(s.split(" ")) == 2 for s in receiver.signatures[10:])
        assert stream.status(destination.id).state != "auth_failed"

        # The grace period over (as if an hour had passed): only the new secret signs.
        over = settings.rotated(time.time() - 3600, grace_s=1, secret=new)
        running_with(stream, destination.model_copy(update={"settings": over}))
        receiver.use_secrets([old])
        stream.produce(10)
        assert wait_until(lambda: stream.status(destination.id).state == "auth_failed")
        receiver.use_secrets([new])
        assert receiver.store.wait_for(40, timeout=60)
        assert len(receiver.signatures[-1].split(" ")) == 1


def running_with(stream: Stream, destination: Destination) -> None:
    """Stores ``destination`` and waits until its connector runs with it."""
    stream.store.replace(destination)

    def applied() -> bool:
        worker = stream.runtime.workers().get(destination.id)
        return worker is not None and worker.destination.settings == destination.settings

    assert wait_until(applied)


def test_gone_endpoint_stops_delivery_until_it_is_back(stream: Stream) -> None:
    secret = new_secret()
    with WebhookReceiver([secret]) as receiver:
        destination = stream.store.add(
            "webhook", "gone", {"url": receiver.endpoint, "secret": secret}
        )
        receiver.faults.fail_next(3, 410)
        events = stream.produce(30)
        assert wait_until(lambda: stream.status(destination.id).state == "auth_failed")
        assert receiver.store.wait_for(30, timeout=60)
        assert sorted(e["event_id"] for e in receiver.store.events()) == sorted(
            e["event_id"] for e in events
        )
        assert stream.status(destination.id).dead_lettered == 0


def test_moving_a_webhook_needs_its_headers_not_its_signing_secret() -> None:
    from schemas.destinations import DestinationError, make_destination

    current = make_destination(
        "webhook",
        "hook",
        {"url": "https://a.example/in", "headers": f"X-Api-Key: {API_KEY}"},
    )
    with pytest.raises(DestinationError) as refused:
        updated_destination(current, None, {"url": "https://b.example/in"})
    assert refused.value.field == "headers" and API_KEY not in str(refused.value)
    moved = updated_destination(
        current, None, {"url": "https://b.example/in", "headers": f"X-Api-Key: {API_KEY}"}
    )
    assert isinstance(moved.settings, WebhookSettings)
    assert moved.settings.secret == current.settings.secret  # type: ignore[attr-defined]
