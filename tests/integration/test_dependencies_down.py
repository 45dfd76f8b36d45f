"""The API with a dependency down. Its broker stopped: every route of the OpenAPI
document, called with a valid, an unknown and a malformed token, answers without a 500;
what needs the broker answers 503 with ``Retry-After``, what does not (the Logs view with a
known token) goes on working. Its log store unreachable: every route that reads it answers
503 with ``Retry-After`` (an export too, rather than a 200 cut short). An unknown token is
limited per client address before the tokens topic is read."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from authtrail.kafka_local import LocalKafka
from infra.kafka.topic_admin import ensure_topics
from infra.secrets import load_keyring
from query_api.app import create_app
from query_api.auth import SessionSigner
from query_api.limits import ApiLimits
from query_api.repository import LogRepository
from query_api.routes.deps import StreamContext
from query_api.tokens import TokenLog, create_token
from schemas.log_store import StoreLocation
from schemas.settings import Settings
from tests import leaks
from tests.integration.conftest import free_port
from tests.platform_fakes import DatadogReceiver
from tests.samples import DD_KEY

UNKNOWN = "at_222222222222_" + "x" * 43  # well-formed, never issued
MALFORMED = "not a token"


class DownBroker:
    """An API process's view of the world once its broker is gone."""

    def __init__(self, app: FastAPI, admin: str, destination_id: str) -> None:
        self.app, self.admin, self.destination_id = app, admin, destination_id


@pytest.fixture(scope="module")
def down(store: StoreLocation, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DownBroker]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("broker-down"),
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        topic_partitions=1,
    )
    kafka = LocalKafka(settings)
    kafka.start()
    settings = settings.model_copy(update={"kafka_bootstrap": kafka.bootstrap})
    ensure_topics(settings)
    tokens = TokenLog(settings).start()
    stream: StreamContext | None = None
    repository = LogRepository(store, query_timeout_s=30)
    try:
        stream = StreamContext.open(settings)
        admin, _record = create_token(settings, "admin", "broker-down admin")
        leaks.register(admin)
        assert tokens.catch_up()
        with DatadogReceiver(DD_KEY) as datadog:
            destination = stream.destinations.add(
                "datadog", "down", {"api_key": DD_KEY, "endpoint": datadog.url}
            )
        app = create_app(
            repository,
            tokens,
            SessionSigner(load_keyring(settings)),
            stream=stream,
            limits=ApiLimits(rate=1000, burst=1000),
        )
        assert kafka.stop(), "the broker did not stop"
        yield DownBroker(app, admin, destination.id)
    finally:
        kafka.stop()
        if stream is not None:
            stream.stop()
        tokens.stop()
        repository.close()


# A body that passes validation, per route that takes one: the request must reach the
# route's own code, where the broker is needed.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/destination-types/{platform}/test"): {
        "platform": "datadog",
        "name": "t",
        "settings": {"api_key": DD_KEY, "endpoint": "http://127.0.0.1:9"},
    },
    ("POST", "/api/v1/destinations"): {
        "platform": "datadog",
        "name": "new",
        "settings": {"api_key": DD_KEY},
    },
    ("PATCH", "/api/v1/destinations/{destination_id}"): {"name": "renamed"},
    ("POST", "/api/v1/destinations/{destination_id}/replay"): {"from": "2026-01-01T00:00:00Z"},
    ("POST", "/api/v1/session"): "token",
}


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    ]


def _call(
    client: TestClient, method: str, path: str, token: str, destination_id: str
) -> tuple[int, dict[str, str], str]:
    url = (
        path.replace("{destination_id}", destination_id)
        .replace("{platform}", "datadog")
        .replace("{event_id}", str(uuid.uuid4()))
        .replace("{name}", "accounts")
    )
    body = BODIES.get((method, path))
    if body == "token":
        body = {"token": token}
    response = client.request(
        method,
        url,
        headers={"Authorization": f"Bearer {token}"},
        json=body,
        params={"limit": "5"} if url.endswith("/logs") else None,
    )
    return response.status_code, dict(response.headers), response.text


@pytest.mark.parametrize("kind", ["valid", "unknown", "malformed"])
def test_no_route_answers_500_with_the_broker_down(down: DownBroker, kind: str) -> None:
    token = {"valid": down.admin, "unknown": UNKNOWN, "malformed": MALFORMED}[kind]
    routes = _routes(down.app)
    assert len(routes) >= 20
    assert {k for k in BODIES} <= set(routes), "a body for a route that is gone"
    answers: dict[str, int] = {}
    with (
        TestClient(down.app, raise_server_exceptions=False) as client,
        ThreadPoolExecutor(len(routes)) as pool,
    ):
        # All at once, as many clients would: each waits for the broker on its own.
        replies = pool.map(
            lambda route: (route, _call(client, *route, token, down.destination_id)), routes
        )
        for (method, path), (status, headers, text) in replies:
            answers[f"{method} {path}"] = status
            assert status != 500, f"{method} {path}: {text}"
            assert status < 500 or status == 503, f"{method} {path}: {status} {text}"
            if status == 503 and path != "/healthz":
                assert re.fullmatch(r"[1-9][0-9]*", headers.get("retry-after", "")), (
                    f"{method} {path}: 503 without Retry-After"
                )
                assert "broker" in text or "store" in text, text
    if kind == "valid":
        # The Logs view reads the log store, not the broker: it keeps answering.
        assert answers["GET /api/v1/logs"] == 200
        assert answers["GET /api/v1/destinations"] == 200  # from memory
        assert answers["POST /api/v1/destinations"] == 503
        assert answers["PATCH /api/v1/destinations/{destination_id}"] == 503
    elif kind == "unknown":
        assert answers["GET /api/v1/logs"] == 503  # cannot tell a new token from a wrong one
    else:
        assert answers["GET /api/v1/logs"] == 401


def test_unknown_tokens_are_limited_per_address_before_any_topic_read(
    store: StoreLocation, api_settings: Settings
) -> None:
    """With the broker up, each unknown token makes the API read the tokens topic to its
    end (a token may have just been created): a caller sending unknown tokens is limited
    per address first, so it cannot make the API read the topic at will."""
    reads: list[float] = []

    class CountedTokens(TokenLog):
        def catch_up(self, timeout_s: float = 5.0) -> bool:
            reads.append(timeout_s)
            return super().catch_up(timeout_s)

    tokens = CountedTokens(api_settings).start()
    repository = LogRepository(store)
    app = create_app(
        repository,
        tokens,
        SessionSigner(load_keyring(api_settings)),
        limits=ApiLimits(rate=0.001, burst=3),
    )
    try:
        with TestClient(app) as client:
            statuses = [
                client.get("/api/v1/logs", headers={"Authorization": f"Bearer {UNKNOWN}"})
                for _ in range(6)
            ]
            signed_in = client.post("/api/v1/session", json={"token": UNKNOWN})
    finally:
        tokens.stop()
        repository.close()
    assert [s.status_code for s in statuses] == [401, 401, 401, 429, 429, 429]
    assert all(s.headers["retry-after"].isdigit() for s in statuses[3:])
    assert signed_in.status_code == 429
    assert len(reads) == 3  # none once over the limit


def test_every_log_route_answers_503_with_the_store_unreachable(
    token_log: TokenLog, tokens: dict[str, str], api_settings: Settings
) -> None:
    closed = free_port()  # nothing listens there
    repository = LogRepository(StoreLocation.parse(f"http://127.0.0.1:{closed}/authtrail"))
    app = create_app(repository, token_log, SessionSigner(load_keyring(api_settings)))
    routes = [r for r in _routes(app) if r[1].startswith(("/api/v1/logs", "/api/v1/facets"))]
    assert len(routes) == 5
    with TestClient(app, raise_server_exceptions=False) as client:
        for method, path in routes:
            status, headers, text = _call(client, method, path, tokens["viewer"], "x")
            assert status == 503, f"{method} {path}: {status} {text}"
            assert headers["retry-after"] == "5" and "log store unavailable" in text
            assert str(closed) not in text  # the store's address stays in the log
        health = client.get("/healthz")
        assert health.status_code == 503
    repository.close()
