"""Saved views through the API (real broker for their topic, real chDB): owners, sharing,
account scope, checked filters, removal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from query_api.tokens import TokenLog, create_token
from schemas.settings import Settings
from tests import leaks
from tests.integration.conftest import bearer


def save(client: TestClient, token: str, **body: Any) -> Any:
    return client.post("/api/v1/views", json=body, headers=bearer(token))


def names(client: TestClient, token: str) -> set[str]:
    response = client.get("/api/v1/views", headers=bearer(token))
    assert response.status_code == 200, response.text
    return {view["name"] for view in response.json()}


def test_owners_sharing_and_account_scope(api_client: TestClient, tokens: dict[str, str]) -> None:
    admin, viewer, scoped = tokens["admin"], tokens["viewer"], tokens["scoped"]
    private = save(
        api_client,
        viewer,
        name="  My failures ",
        filter={"q": "outcome:failure type:login.*", "range": "7d"},
        sort="log",
        order="asc",
    )
    assert private.status_code == 201, private.text
    mine = private.json()
    assert mine["name"] == "My failures" and mine["account"] is None and not mine["shared"]
    assert mine["filter"]["q"] == "outcome:failure type:login.*" and mine["sort"] == "log"
    assert mine["id"].startswith("vw_")
    save(api_client, admin, name="All of acc_1", filter={"account": ["acc_1"]}, shared=True)
    save(api_client, admin, name="acc_2 only", filter={"account": ["acc_2"]}, shared=True)
    save(api_client, admin, name="Everyone's", filter={"q": "type:oidc.*"}, shared=True)
    save(api_client, admin, name="Admin's own", filter={"account": ["acc_1"]})
    scoped_view = save(api_client, scoped, name="Scoped", filter={"q": "login."}).json()
    assert scoped_view["account"] == "acc_1"  # a scoped caller's view stays in its account

    assert {"My failures", "All of acc_1", "acc_2 only", "Everyone's"} <= names(api_client, viewer)
    assert "Admin's own" not in names(api_client, viewer)  # private
    assert "Scoped" not in names(api_client, viewer)
    # A scoped token sees only what stays inside its account.
    assert names(api_client, scoped) >= {"All of acc_1", "Scoped"}
    assert not names(api_client, scoped) & {"acc_2 only", "Everyone's", "My failures"}
    fetched = api_client.get(f"/api/v1/views/{mine['id']}", headers=bearer(scoped))
    assert fetched.status_code == 404  # not its view, not inside its account

    # Removal: the owner or an admin who sees it, nobody else.
    shared_id = next(
        v["id"]
        for v in api_client.get("/api/v1/views", headers=bearer(viewer)).json()
        if v["name"] == "Everyone's"
    )
    refused = api_client.delete(f"/api/v1/views/{shared_id}", headers=bearer(viewer))
    assert refused.status_code == 403, refused.text
    assert (
        api_client.delete(f"/api/v1/views/{mine['id']}", headers=bearer(viewer)).status_code == 204
    )
    assert api_client.delete(f"/api/v1/views/{shared_id}", headers=bearer(admin)).status_code == 204
    assert api_client.get(f"/api/v1/views/{mine['id']}", headers=bearer(viewer)).status_code == 404
    assert not names(api_client, viewer) & {"My failures", "Everyone's"}


def test_a_view_is_checked_as_the_logs_parameters_are(
    api_client: TestClient, tokens: dict[str, str]
) -> None:
    cases = [
        ({"q": "(login.failed"}, 400, "filter.q", "at position 13"),
        ({"range": "1h", "from": "2026-11-01T00:00:00Z"}, 400, "filter.range", "either"),
        ({"tz": "Mars/Olympus"}, 400, "filter.tz", "time zone"),
        ({"from": "2026-11-01T00:00:00"}, 400, "filter.from", "offset"),
    ]
    for view_filter, status, parameter, message in cases:
        response = save(api_client, tokens["viewer"], name="bad", filter=view_filter)
        assert response.status_code == status, (view_filter, response.text)
        error = response.json()["errors"][0]
        assert error["parameter"] == parameter and message in error["message"], error
    other = save(api_client, tokens["scoped"], name="x", filter={"account": ["acc_2"]})
    assert other.status_code == 403
    assert other.json()["errors"][0]["parameter"] == "filter.account"
    for body in ({"name": ""}, {"name": "x", "filter": {"nope": 1}}, {"name": "x", "sort": "up"}):
        assert (
            api_client.post(
                "/api/v1/views", json=body, headers=bearer(tokens["viewer"])
            ).status_code
            == 422
        ), body
    assert api_client.get("/api/v1/views/nope", headers=bearer(tokens["viewer"])).status_code == 422
    assert api_client.get("/api/v1/views").status_code == 401


def test_viewer_tokens_read_one_account_only_and_end(
    api_client: TestClient, tokens: dict[str, str], api_settings: Settings, token_log: TokenLog
) -> None:
    admin = tokens["admin"]
    shared = save(api_client, admin, name="acc_1 failures", filter={"account": ["acc_1"]},
                  shared=True).json()  # fmt: skip
    private = save(api_client, admin, name="mine", filter={"account": ["acc_1"]}).json()
    made = api_client.post(
        "/api/v1/viewer-tokens",
        json={"account": "acc_1", "ttl": 600, "view": shared["id"]},
        headers=bearer(admin),
    )
    assert made.status_code == 201, made.text
    body = made.json()
    leaks.register(body["token"])
    assert body["embed_path"].startswith("/embed?token=at_") and shared["id"] in body["embed_path"]
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(seconds=590) < expires - datetime.now(UTC) <= timedelta(seconds=600)
    viewer = body["token"]
    who = api_client.get("/api/v1/session", headers=bearer(viewer)).json()
    assert who["account"] == "acc_1" and who["role"] == "viewer"
    other = api_client.get("/api/v1/logs", params={"account": "acc_2"}, headers=bearer(viewer))
    assert other.status_code == 403
    assert (
        api_client.get(f"/api/v1/views/{shared['id']}", headers=bearer(viewer)).status_code == 200
    )
    refused = save(api_client, viewer, name="x")
    assert refused.status_code == 403 and "only reads" in refused.text
    assert api_client.get("/api/v1/destinations", headers=bearer(viewer)).status_code == 403

    for payload, status, parameter in (
        ({"account": "acc_1", "ttl": 86_401}, 422, "ttl"),
        ({"account": "acc_1", "view": private["id"]}, 400, "view"),  # not shared
        ({"account": "acc_2", "view": shared["id"]}, 400, "view"),  # another account's
        ({"ttl": 60}, 422, "account"),
    ):
        reply = api_client.post("/api/v1/viewer-tokens", json=payload, headers=bearer(admin))
        assert reply.status_code == status, (payload, reply.text)
        assert reply.json()["errors"][0]["parameter"] == parameter
    as_viewer = api_client.post(
        "/api/v1/viewer-tokens", json={"account": "acc_1"}, headers=bearer(tokens["viewer"])
    )
    assert as_viewer.status_code == 403

    # Expiry ends it.
    ended, _ = create_token(
        api_settings, "viewer", "ended viewer", "acc_1",
        datetime.now(UTC) - timedelta(seconds=1), read_only=True,
    )  # fmt: skip
    leaks.register(ended)
    assert token_log.catch_up()
    assert api_client.get("/api/v1/logs", headers=bearer(ended)).status_code == 401


def test_the_embed_page_is_not_framable_unless_origins_are_allowed(
    api_client: TestClient,
) -> None:
    page = api_client.get("/embed")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
