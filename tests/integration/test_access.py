"""Access control over every route the API has (read from its own OpenAPI document, so a
new route is covered the day it is added): no token, expired and revoked tokens, viewers
on admin routes, account-scoped tokens on routes that span every account, CSRF on every
state change made with the page's cookie, cookie flags, tokens hashed at rest,
``authtrail token revoke``, destination secrets encrypted in their topic, and the API's
limits (request rate per token with 429 + Retry-After, body size, query time)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Consumer
from fastapi import FastAPI
from fastapi.testclient import TestClient

from infra.secrets import load_keyring
from query_api.app import create_app
from query_api.auth import SessionSigner
from query_api.limits import ApiLimits
from query_api.repository import LogRepository
from query_api.tokens import TokenLog, create_token
from schemas.log_store import StoreLocation
from schemas.settings import Settings
from tests.integration.conftest import base_env, bearer, run_cli
from tests.integration.platforms import ALL_PLATFORMS, HOOK_KEY
from tests.integration.streaming import wait_until

PATH_VALUES = {
    "event_id": "no-such-event",
    "destination_id": "abcdefghij",
    "channel_id": "abcdefghij",
    "view_id": "vw_0123456789ab",
    "name": "accounts",
    "platform": "datadog",
    "account": "acc_1",
    "erasure_id": "er_0123456789abcdef",
}
SESSION = "/api/v1/session"
CSRF = {"X-Requested-With": "authtrail"}


def operations(app: FastAPI) -> list[tuple[str, str]]:
    """(method, concrete path) of every /api operation."""
    found = []
    for path, item in app.openapi()["paths"].items():
        if not path.startswith("/api/"):
            continue
        concrete = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)
        found.extend((method.upper(), concrete) for method in item)
    return found


def changes_state(method: str) -> bool:
    return method not in ("GET", "HEAD", "OPTIONS")


# Every caller saves and removes views of its own (their rules: tests/integration/test_views.py).
OWN_STATE = "/api/v1/views"


# Writing events: producer tokens alone, which read nothing (tests/integration/test_http_ingest.py).
PRODUCER_ONLY = "/api/v1/events"


def spans_every_account(path: str) -> bool:
    return path.startswith(
        (
            "/api/v1/destinations",
            "/api/v1/notification-channels",
            "/api/v1/retention",
            "/api/v1/erasures",
        )
    )


def call(api_client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    body = {} if method in ("POST", "PATCH", "PUT") else None
    return api_client.request(method, path, headers=headers, json=body)


def test_every_route_needs_a_valid_active_token(
    api_client: TestClient, api_app: FastAPI, tokens: dict[str, str], api_settings: Settings
) -> None:
    expired, _ = create_token(
        api_settings, "viewer", "expired", expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    forged = "at_" + tokens["viewer"][3:15] + "_" + "A" * 43  # a real id, a wrong secret
    ops = operations(api_app)
    assert len(ops) >= 20
    for method, path in ops:
        if (method, path) == ("POST", SESSION):
            continue  # signing in is how a token is presented
        for headers in (
            {},
            bearer(expired),
            bearer(tokens["revoked"]),
            bearer(forged),
            {"Authorization": "Basic dXNlcjpwYXNz"},
        ):
            reply = call(api_client, method, path, headers)
            assert reply.status_code == 401, (method, path, headers, reply.text)
            assert reply.headers["www-authenticate"].startswith("Bearer")
            for secret in (expired, tokens["revoked"], forged):
                assert secret not in reply.text
    assert api_client.post(SESSION, json={"token": expired}).status_code == 401


def test_viewers_and_scoped_tokens_are_refused_where_they_do_not_belong(
    api_client: TestClient, api_app: FastAPI, tokens: dict[str, str]
) -> None:
    for method, path in operations(api_app):
        if path.startswith(SESSION) or path == "/api/v1/destination-types":
            continue
        viewer = call(api_client, method, path, bearer(tokens["viewer"]))
        scoped = call(api_client, method, path, bearer(tokens["scoped"]))
        producer = call(api_client, method, path, bearer(tokens["producer"]))
        if path == PRODUCER_ONLY:
            for reply in (viewer, scoped):
                assert reply.status_code == 403, (method, path, reply.text)
                assert reply.json()["errors"][0]["parameter"] == "role"
            continue
        assert producer.status_code == 403, (method, path, producer.text)
        assert producer.json()["errors"][0]["parameter"] == "role"
        if path.startswith(OWN_STATE):
            for reply in (viewer, scoped):  # the empty body: refused as such, not by role
                assert reply.status_code in (200, 404, 422), (method, path, reply.text)
            continue
        if changes_state(method):
            assert viewer.status_code == 403, (method, path, viewer.text)
            assert viewer.json()["errors"][0]["parameter"] in ("role", "account")
        if spans_every_account(path) or changes_state(method):
            # Destinations carry every account's events (status counts, dead letters).
            assert scoped.status_code == 403, (method, path, scoped.text)
            assert scoped.json()["errors"][0]["parameter"] == "account"
        else:
            assert scoped.status_code in (200, 404), (method, path, scoped.text)


def test_a_scoped_token_asking_for_another_account_is_refused_on_every_log_route(
    api_client: TestClient, tokens: dict[str, str]
) -> None:
    for path in (
        "/api/v1/logs",
        "/api/v1/logs/export",
        "/api/v1/logs/timeline",
        "/api/v1/facets/accounts",
        "/api/v1/facets/users",
        "/api/v1/facets/types",
    ):
        reply = api_client.get(path, params={"account": "acc_2"}, headers=bearer(tokens["scoped"]))
        assert reply.status_code == 403, (path, reply.text)
        assert reply.json()["errors"][0]["parameter"] == "account"


def test_admin_tokens_are_never_scoped(api_settings: Settings) -> None:
    with pytest.raises(ValueError, match="admin tokens see every account"):
        create_token(api_settings, "admin", "scoped admin", "acc_1")


def test_csrf_every_state_change_with_the_cookie_needs_the_header(
    api_client: TestClient, api_app: FastAPI, tokens: dict[str, str]
) -> None:
    assert api_client.post(SESSION, json={"token": tokens["admin"]}).status_code == 200
    try:
        for method, path in operations(api_app):
            if not changes_state(method) or path == SESSION:
                continue
            reply = call(api_client, method, path, {})
            assert reply.status_code == 403, (method, path, reply.text)
            assert reply.json()["errors"][0]["parameter"] == "x-requested-with"
            # With the header the request is judged on its merits (404, 422, ...).
            judged = call(api_client, method, path, CSRF)
            if path == PRODUCER_ONLY:  # an admin's session does not write events
                assert judged.json()["errors"][0]["parameter"] == "role"
            else:
                assert judged.status_code != 403, (method, path)
        # No CORS: a page on another origin cannot read a reply.
        preflight = api_client.options(
            "/api/v1/logs",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in preflight.headers
    finally:
        api_client.delete(SESSION, headers=CSRF)
        api_client.cookies.clear()


def test_session_cookie_flags_over_https(api_app: FastAPI, tokens: dict[str, str]) -> None:
    with TestClient(api_app, base_url="https://authtrail.example") as https:
        reply = https.post(SESSION, json={"token": tokens["viewer"]})
    cookie = reply.headers["set-cookie"].lower()
    for flag in ("httponly", "samesite=strict", "secure", "path=/", "max-age=43200"):
        assert flag in cookie, cookie
    assert tokens["viewer"].lower() not in cookie


def test_a_session_ends_when_its_token_expires(
    api_client: TestClient, api_settings: Settings, token_log: TokenLog
) -> None:
    short, _ = create_token(
        api_settings, "viewer", "short-lived", expires_at=datetime.now(UTC) + timedelta(seconds=2)
    )
    assert api_client.post(SESSION, json={"token": short}).status_code == 200
    try:
        assert api_client.get(SESSION).status_code == 200
        time.sleep(2.5)
        assert api_client.get(SESSION).status_code == 401
        assert api_client.get("/api/v1/logs", headers=bearer(short)).status_code == 401
    finally:
        api_client.cookies.clear()


def raw_records(settings: Settings, topic: str) -> list[bytes]:
    """Every record value of ``topic``, as stored."""
    consumer = Consumer(
        {
            **settings.kafka_client_config(),
            "group.id": f"raw-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    quiet_since = time.monotonic()
    try:
        while time.monotonic() - quiet_since < 5 or not values:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value() or b"")
                quiet_since = time.monotonic()
            if time.monotonic() - quiet_since > 30:
                break
    finally:
        consumer.close()
    return values


def test_tokens_are_hashed_at_rest(api_settings: Settings, tokens: dict[str, str]) -> None:
    stored = b"\n".join(raw_records(api_settings, api_settings.topics.tokens))
    for plaintext in tokens.values():
        token_id, secret = plaintext[3:15], plaintext[16:]
        assert token_id.encode() in stored
        assert secret.encode() not in stored and plaintext.encode() not in stored


def test_destination_secrets_are_encrypted_in_their_topic(
    api_client: TestClient, api_settings: Settings, tokens: dict[str, str]
) -> None:
    admin = bearer(tokens["admin"])
    listed = api_client.get("/api/v1/destination-types", headers=admin).json()
    types = {t["platform"]: t for t in listed}
    secrets: list[str] = []
    made = []
    for platform in ALL_PLATFORMS:
        with platform.receiver() as receiver:
            settings = platform.settings(receiver)
        body = {"platform": platform.name, "name": f"sealed {platform.name}", "settings": settings}
        reply = api_client.post("/api/v1/destinations", headers=admin, json=body)
        assert reply.status_code == 201, reply.text
        made.append(reply.json()["id"])
        secrets.extend(settings[field] for field in types[platform.name]["secrets"])
        assert not any(secret in reply.text for secret in secrets)
    assert len(secrets) == len(ALL_PLATFORMS) + 1  # a webhook's secret and its headers
    secrets.append(HOOK_KEY)  # a header's value alone, as stored (JSON)
    stored = b"\n".join(raw_records(api_settings, api_settings.topics.destinations))
    assert b"sealed datadog" in stored  # the records are there, their secrets are not
    for secret in secrets:
        assert secret.encode() not in stored
    for destination_id in made:
        api_client.delete(f"/api/v1/destinations/{destination_id}", headers=admin)


def test_token_revoke_from_the_cli_ends_access(
    api_client: TestClient, api_settings: Settings, tmp_path: Any
) -> None:
    env = base_env(
        api_settings.data_dir,
        AUTHTRAIL_KAFKA_BOOTSTRAP=api_settings.kafka_bootstrap or "",
        AUTHTRAIL_TOPIC_PREFIX=api_settings.topic_prefix,
    )
    created = run_cli(env, "token", "create", "--role", "viewer", "--expires-in", "1h")
    assert created.returncode == 0, created.stderr
    plaintext = created.stdout.strip()
    token_id = plaintext[3:15]
    assert "expires" in created.stderr
    assert api_client.get(SESSION, headers=bearer(plaintext)).status_code == 200
    assert run_cli(env, "token", "create", "--role", "admin", "--account", "a").returncode != 0
    bad = run_cli(env, "token", "create", "--role", "viewer", "--expires-in", "soon")
    assert bad.returncode != 0 and "--expires-in" in bad.stderr
    revoked = run_cli(env, "token", "revoke", token_id)
    assert revoked.returncode == 0, revoked.stderr
    assert wait_until(
        lambda: api_client.get(SESSION, headers=bearer(plaintext)).status_code == 401, timeout=10
    )
    listed = run_cli(env, "token", "list").stdout
    assert re.search(rf"{token_id} .*revoked", listed), listed
    assert plaintext[16:] not in listed


@pytest.fixture(scope="module")
def limited(
    store: StoreLocation, token_log: TokenLog, api_settings: Settings
) -> Iterator[TestClient]:
    """The API with small limits: 1 request/s per token after a burst of 3, bodies of at
    most 2 KiB, and queries of at most a microsecond."""
    app = create_app(
        LogRepository(store, query_timeout_s=0.000001),
        token_log,
        SessionSigner(load_keyring(api_settings)),
        limits=ApiLimits(rate=1, burst=3, max_body_bytes=2048),
    )
    with TestClient(app) as test_client:
        yield test_client


def test_rate_limit_per_token_with_retry_after(limited: TestClient, tokens: dict[str, str]) -> None:
    codes = [limited.get(SESSION, headers=bearer(tokens["viewer"])).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    over = limited.get(SESSION, headers=bearer(tokens["viewer"]))
    assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1
    assert over.json()["errors"][0]["parameter"] == "Authorization"
    # Another token has its own budget.
    assert limited.get(SESSION, headers=bearer(tokens["admin"])).status_code == 200
    time.sleep(float(over.headers["retry-after"]))
    assert limited.get(SESSION, headers=bearer(tokens["viewer"])).status_code == 200
    # Guessing tokens is limited per client address.
    guesses = [
        limited.get(SESSION, headers=bearer(f"at_{'a' * 12}_{n:043d}")).status_code
        for n in range(5)
    ]
    assert guesses[:3] == [401, 401, 401] and guesses[-1] == 429
    # However the guess is malformed.
    for header in ("Basic dXNlcjpwYXNz", "Bearer ", "at_x"):
        assert limited.get(SESSION, headers={"Authorization": header}).status_code == 429


def test_request_bodies_over_the_limit_are_413(limited: TestClient) -> None:
    declared = limited.post(SESSION, content=b"{" + b" " * 4096 + b"}")
    assert declared.status_code == 413
    assert declared.json()["errors"][0]["parameter"] == "body"

    def chunks() -> Iterator[bytes]:
        yield b'{"token": "'
        for _ in range(10):
            yield b"x" * 1024
        yield b'"}'

    streamed = limited.post(SESSION, content=chunks())
    assert streamed.status_code == 413, streamed.text


def test_a_query_over_the_time_limit_is_503(limited: TestClient, tokens: dict[str, str]) -> None:
    time.sleep(3)  # the admin token's budget refills after the rate test
    reply = limited.get("/api/v1/logs", params={"q": "firefox"}, headers=bearer(tokens["admin"]))
    assert reply.status_code == 503, reply.text
    assert "narrow the filter" in reply.json()["errors"][0]["message"]
