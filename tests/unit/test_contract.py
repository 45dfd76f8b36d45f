"""The contract pieces: catalogue, JSON Schema export, settings, cursors."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from query_api.cursor import Cursor, InvalidCursorError
from schemas import jsonschema_export
from schemas.catalogue import CATALOGUE, describe, implied_outcome
from schemas.log_store import StoreLocation, StoreUnavailableError
from schemas.settings import Settings, redact_url
from tests.expected import SEED_EVENTS


@pytest.mark.parametrize(("key", "expected"), SEED_EVENTS.items())
def test_catalogue_seed_keys(key: str, expected: tuple[str, str]) -> None:
    assert (describe(key), implied_outcome(key)) == expected


def test_catalogue_covers_common_identity_events() -> None:
    for key in (
        "logout.completed",
        "mfa.challenge.passed",
        "mfa.challenge.failed",
        "password.reset.completed",
        "user.locked",
        "scim.user.provisioned",
        "scim.user.deprovisioned",
        "api_token.created",
        "api_token.revoked",
    ):
        assert key in CATALOGUE
    assert implied_outcome("mfa.challenge.failed") == "failure"


def test_exported_json_schema_is_current() -> None:
    assert jsonschema_export.SCHEMA_PATH.read_text() == jsonschema_export.render(), (
        "run `make schema` and commit the result"
    )
    schema = json.loads(jsonschema_export.render())
    assert set(schema["required"]) == {"event_key", "occurred_at"}


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("AUTHTRAIL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AUTHTRAIL_API_PORT", "18123")
    monkeypatch.setenv("AUTHTRAIL_TOPIC_PREFIX", "t1.")
    settings = Settings()
    assert settings.api_url == "http://127.0.0.1:18123"
    topics = settings.topics
    assert (topics.raw, topics.normalized, topics.dlq, topics.tokens) == (
        "t1.auth-events",
        "t1.auth-events.normalized",
        "t1.auth-events.dlq",
        "t1.authtrail.tokens",
    )
    assert topics.destination_dlq("abc") == "t1.auth-events.dlq.abc"
    assert settings.resolved_clickhouse_url == f"chdb://{tmp_path}/clickhouse"
    assert settings.embedded_kafka
    monkeypatch.setenv("AUTHTRAIL_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    assert Settings().bootstrap_servers == "k1:9092,k2:9092"


def test_invalid_port_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHTRAIL_API_PORT", "99999")
    with pytest.raises(ValueError, match="api_port"):
        Settings()


def test_redact_url_hides_password() -> None:
    assert redact_url("https://reader:s3cret@ch.example:8443/logs") == (
        "https://reader:***@ch.example:8443/logs"
    )
    assert redact_url("chdb:///var/x") == "chdb:///var/x"


def test_store_location_parsing() -> None:
    assert StoreLocation.parse("https://u:p@h:8443/audit").database == "audit"
    assert StoreLocation.parse("http://h:8123").database == "authtrail"
    assert StoreLocation.parse("chdb:///tmp/x").embedded
    with pytest.raises(StoreUnavailableError, match="must start with") as err:
        StoreLocation.parse("postgres://u:hunter2@h/db")
    assert "hunter2" not in str(err.value)


def test_cursor_round_trip_and_tampering() -> None:
    moment = datetime(2026, 11, 26, 12, 0, 0, 123000, tzinfo=UTC)
    cursor = Cursor("log", "asc", ("Login failed", moment, "abc"), moment, None)
    assert Cursor.decode(cursor.encode(), "log", "asc") == cursor
    with pytest.raises(InvalidCursorError, match="another sort"):
        Cursor.decode(cursor.encode(), "time", "asc")
    for bad in ("", "x", "eyJ2IjoyfQ", "!!!!", "eyJ2IjoxLCJ0IjoiYSIsImlkIjoxfQ"):
        with pytest.raises(InvalidCursorError):
            Cursor.decode(bad, "time", "desc")


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing = [
        f"AUTHTRAIL_{name.upper()}"
        for name in Settings.model_fields
        if f"`AUTHTRAIL_{name.upper()}`" not in readme
    ]
    assert not missing, f"README configuration table lacks {missing}"


def test_sasl_settings_reach_the_kafka_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHTRAIL_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ValueError, match="AUTHTRAIL_KAFKA_SASL_USERNAME"):
        Settings()
    monkeypatch.setenv("AUTHTRAIL_KAFKA_SASL_USERNAME", "authtrail")
    monkeypatch.setenv("AUTHTRAIL_KAFKA_SASL_PASSWORD", "pw-123")
    settings = Settings()
    config = settings.kafka_client_config()
    assert config["security.protocol"] == "SASL_SSL"
    assert (config["sasl.username"], config["sasl.password"]) == ("authtrail", "pw-123")
    assert "pw-123" not in repr(settings)


def test_a_server_deployment_needs_a_shared_secret_key(tmp_path: Path) -> None:
    from infra.secrets import MissingSecretKeyError, load_keyring

    server = Settings(data_dir=tmp_path, clickhouse_url="http://ch:8123/authtrail")
    with pytest.raises(MissingSecretKeyError, match="AUTHTRAIL_SECRET_KEY"):
        load_keyring(server)
    key = secrets.token_urlsafe(48)
    shared = server.model_copy(update={"secret_key": SecretStr(key)})
    assert load_keyring(shared).current == key.encode()
    embedded = Settings(data_dir=tmp_path)
    assert load_keyring(embedded) == load_keyring(embedded)  # generated once
