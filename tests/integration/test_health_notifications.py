"""Health that tells someone: a destination failing longer than its ``suspend_after`` is
suspended (offsets and lag kept, resumed by hand, then catches up losing nothing), and
every state change is told to the notification channels, signed (verified by the
``standardwebhooks`` package), at most one message per destination per interval."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from schemas.settings import Settings
from schemas.standard_webhooks import new_secret
from tests.integration.platforms import DATADOG
from tests.integration.streaming import Stream, wait_until
from tests.platform_fakes import DatadogReceiver
from tests.platform_fakes.webhook import WebhookReceiver


@pytest.fixture
def stream(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stream]:
    settings = Settings(
        data_dir=tmp_path,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"h{uuid.uuid4().hex[:8]}.",
        topic_partitions=3,
        notification_interval_seconds=1.0,
    )
    instance = Stream(kafka_bootstrap, tmp_path, settings)
    yield instance
    instance.close()


def told(hook: WebhookReceiver, destination_id: str) -> list[dict[str, Any]]:
    return [m for m in hook.store.events() if m.get("destination_id") == destination_id]


def test_failing_too_long_is_suspended_told_and_resumed_by_hand(stream: Stream) -> None:
    from connectors.notify.channels import ChannelStore

    secret = new_secret()
    with (
        WebhookReceiver([secret]) as hook,
        DATADOG.receiver() as datadog,
        ChannelStore(stream.settings) as channels,
    ):
        assert isinstance(datadog, DatadogReceiver)
        channels.add("webhook", "ops", {"url": hook.endpoint, "secret": secret})
        destination_id = stream.add("datadog", {**DATADOG.settings(datadog), "suspend_after": "6s"})
        stream.start()
        first = stream.produce(20)
        assert datadog.store.wait_for(20, timeout=60)

        def learned() -> bool:  # healthy: the baseline, not news
            notifier = stream.runtime.notifier
            return notifier is not None and destination_id in notifier.book.known()

        assert wait_until(learned, 60)
        datadog.faults.fail_next(10**6, 503)  # from now on every request fails
        later = stream.produce(30)
        assert wait_until(
            lambda: stream.store.require(destination_id).suspended_at is not None, 90
        ), (stream.status(destination_id), datadog.store.requests, datadog.faults.pending)
        assert wait_until(
            lambda: any(m["state"] == "suspended" for m in told(hook, destination_id)), 60
        )
        messages = told(hook, destination_id)
        states = [(m["previous_state"], m["state"]) for m in messages]
        assert states[0] == ("healthy", "failing")
        assert states[-1][1] == "suspended"
        assert all(m["destination_name"] and m["platform"] == "datadog" for m in messages)
        assert all(m["type"] == "destination.state_changed" for m in messages)
        assert "HTTP 503" in (messages[-1]["last_error"] or "")
        # Suspended: no worker, nothing committed past what was delivered.
        assert wait_until(lambda: destination_id not in stream.runtime.workers(), 30)

        datadog.faults.clear()
        stream.store.set_paused(destination_id, False)  # resumed by hand
        assert wait_until(
            lambda: (
                {e["event_id"] for e in first + later}
                <= {DATADOG.event_of(e)["event_id"] for e in datadog.store.events()}
            ),
            90,
        )
        assert wait_until(lambda: told(hook, destination_id)[-1]["state"] == "healthy", 60)
        assert hook.duplicates == 0


def test_channels_from_the_api(api_client: TestClient, tokens: dict[str, str]) -> None:
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    with WebhookReceiver([new_secret()]) as refusing:
        made = api_client.post(
            "/api/v1/notification-channels",
            json={"name": "ops", "settings": {"url": refusing.endpoint}},
            headers=admin,
        )
        assert made.status_code == 201, made.text
        body = made.json()
        secret = body["generated_secrets"]["secret"]
        assert secret.startswith("whsec_") and secret not in str(body["settings"])
        listed = api_client.get("/api/v1/notification-channels", headers=admin).json()
        assert secret not in orjson.dumps(listed).decode()
        # The receiver does not know the made secret yet: the test says so.
        tested = api_client.post(f"/api/v1/notification-channels/{body['id']}/test", headers=admin)
        assert tested.json()["ok"] is False and "401" in tested.json()["message"]
        refusing.use_secrets([secret])
        tested = api_client.post(f"/api/v1/notification-channels/{body['id']}/test", headers=admin)
        assert tested.json()["ok"] is True
        assert refusing.store.events()[-1]["type"] == "authtrail.test"
        bad = api_client.post(
            "/api/v1/notification-channels",
            json={"name": "x", "settings": {"url": "ftp://nope"}},
            headers=admin,
        )
        assert bad.status_code == 422 and bad.json()["errors"][0]["parameter"] == "url"
        viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
        assert api_client.get("/api/v1/notification-channels", headers=viewer).status_code == 200
        assert (
            api_client.delete(
                f"/api/v1/notification-channels/{body['id']}", headers=viewer
            ).status_code
            == 403
        )
        scoped = {"Authorization": f"Bearer {tokens['scoped']}"}
        assert api_client.get("/api/v1/notification-channels", headers=scoped).status_code == 403
        gone = api_client.delete(f"/api/v1/notification-channels/{body['id']}", headers=admin)
        assert gone.status_code == 204
