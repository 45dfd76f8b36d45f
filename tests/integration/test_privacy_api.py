"""The privacy routes' requests in process (no ingest worker applies anything here): who
may call them, what is refused and how, and what is answered while nothing applies."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.integration.conftest import bearer


def test_bad_requests_name_the_field(api_client: TestClient, tokens: dict[str, str]) -> None:
    admin = bearer(tokens["admin"])
    empty = api_client.post("/api/v1/erasures", json={"user": "  "}, headers=admin)
    assert empty.status_code == 422 and empty.json()["errors"][0]["parameter"] == "user"
    days = api_client.put("/api/v1/accounts/acc_1/retention", json={"days": 0}, headers=admin)
    assert days.status_code == 422 and days.json()["errors"][0]["parameter"] == "days"
    unknown = api_client.get("/api/v1/erasures/er_0000000000000000", headers=admin)
    assert unknown.status_code == 404


def test_scoped_tokens_read_their_accounts_retention_only(
    api_client: TestClient, tokens: dict[str, str]
) -> None:
    scoped = bearer(tokens["scoped"])  # acc_1
    own = api_client.get("/api/v1/accounts/acc_1/retention", headers=scoped)
    assert own.status_code == 200 and own.json()["account"] == "acc_1"
    other = api_client.get("/api/v1/accounts/acc_2/retention", headers=scoped)
    assert other.status_code == 403 and other.json()["errors"][0]["parameter"] == "account"
    for path in ("/api/v1/retention", "/api/v1/erasures"):
        assert api_client.get(path, headers=bearer(tokens["viewer"])).status_code == 403


def test_without_a_worker_an_erasure_is_recorded_and_answered_pending(
    api_client: TestClient, tokens: dict[str, str]
) -> None:
    admin = bearer(tokens["admin"])
    reply = api_client.post("/api/v1/erasures", json={"user": "nobody@example.org"}, headers=admin)
    assert reply.status_code == 202 and reply.json()["state"] == "pending"
    assert "nobody@example.org" not in reply.text  # never the identifier
    again = api_client.post("/api/v1/erasures", json={"user": "Nobody@Example.org"}, headers=admin)
    assert again.json()["id"] == reply.json()["id"]  # e-mails without case: the same erasure
    listed = api_client.get("/api/v1/erasures", headers=admin).json()
    assert reply.json()["id"] in [e["id"] for e in listed]
