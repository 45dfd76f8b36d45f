"""Destination settings: strict validation naming the key, secrets sealed at rest and
never shown."""

from __future__ import annotations

import secrets

import pytest

from connectors.config import from_record, to_record
from infra.secrets import SecretBox
from schemas.destinations import (
    DestinationError,
    address_changes,
    make_destination,
    parse_settings,
    updated_destination,
)
from schemas.keys import KeyRing
from schemas.platforms import SETTINGS_MODELS
from tests import leaks
from tests.samples import DD_KEY, WEBHOOK_SECRET
from tests.samples import VALID_SETTINGS as VALID

SECRETS = {
    "datadog": DD_KEY,
    "eventbridge": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "s3": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "splunk": "12345678-1234-1234-1234-123456789012",
    "sumologic": "ZaVnC4dhaV3",
    "coralogix": "cxtp_0123456789abcdefABCDEF",
    "webhook": WEBHOOK_SECRET,
}
leaks.register(*SECRETS.values())


@pytest.mark.parametrize("platform", list(VALID))
def test_valid_settings_and_sealed_storage(platform: str) -> None:
    destination = make_destination(
        platform,
        f"{platform} prod",
        {
            **VALID[platform],
            "filter.outcomes": "failure",
            "filter.accounts": "acc_1, acc_2",
            "transform.actor.email": "hash",
        },
    )
    assert destination.filter.outcomes == ["failure"]
    assert destination.filter.accounts == ["acc_1", "acc_2"]
    assert destination.transform == {"actor.email": "hash"}
    assert destination.transform_key is not None
    box = SecretBox(KeyRing(secrets.token_bytes(32)))
    record = to_record(destination, box)
    assert SECRETS[platform].encode() not in record
    assert destination.transform_key.get_secret_value().encode() not in record
    if platform == "webhook":
        assert b"hk_0123456789abcdef" not in record  # header values are sealed too
    assert from_record(record, box) == destination
    shown = str(destination.redacted_settings()) + repr(destination)
    assert SECRETS[platform] not in shown
    with pytest.raises(DestinationError, match="AUTHTRAIL_SECRET_KEY"):
        from_record(record, SecretBox(KeyRing(secrets.token_bytes(32))))


@pytest.mark.parametrize(
    ("platform", "values", "field"),
    [
        ("datadog", {"api_key": DD_KEY, "site": "datadoghq.io"}, "site"),
        ("datadog", {"api_key": "short"}, "api_key"),
        ("datadog", {"api_key": DD_KEY, "tags": "no-colon"}, "tags"),
        ("datadog", {"api_key": DD_KEY, "colour": "blue"}, "colour"),
        ("datadog", {}, "api_key"),
        ("eventbridge", {"region": "eu-west"}, "region"),
        ("eventbridge", {"region": "eu-west-1", "event_bus": "arn:aws:sqs:x"}, "event_bus"),
        (
            "eventbridge",
            {"region": "eu-west-1", "access_key_id": "AKIAIOSFODNN7EXAMPLE"},
            "settings",
        ),
        ("eventbridge", {"region": "eu-west-1", "source": "aws.events"}, "source"),
        ("splunk", {"url": "splunk:8088", "token": "12345678-1234"}, "url"),
        (
            "splunk",
            {"url": "https://s:8088", "token": "12345678-1234", "index": "Bad Index"},
            "index",
        ),
        (
            "splunk",
            {"url": "https://s:8088", "token": "12345678-1234", "verify_tls": "maybe"},
            "verify_tls",
        ),
        ("sumologic", {"url": "http://collector/receiver/v1/http/abc"}, "url"),
        ("sumologic", {"url": VALID["sumologic"]["url"], "fields": "a:b"}, "fields"),
        ("coralogix", {"api_key": "cxtp_0123456789abcdef", "domain": "us9"}, "domain"),
        (
            "coralogix",
            {"api_key": "cxtp_0123456789abcdef", "filter.outcomes": "maybe"},
            "filter.outcomes",
        ),
        ("kafka", {}, "platform"),
    ],
)
def test_invalid_settings_name_the_key(platform: str, values: dict[str, str], field: str) -> None:
    with pytest.raises(DestinationError) as error:
        parse_settings(platform, values)
    assert error.value.field == field
    for secret in SECRETS.values():
        assert secret not in str(error.value)


def test_filter_matching() -> None:
    destination = make_destination(
        "coralogix",
        "cx",
        {
            "api_key": "cxtp_0123456789abcdef",
            "filter.event_keys": "login.failed",
            "filter.accounts": "acc_1",
        },
    )
    assert destination.filter.matches("login.failed", "failure", "acc_1")
    assert not destination.filter.matches("login.failed", "failure", "acc_2")
    assert not destination.filter.matches("login.completed", "failure", "acc_1")
    everything = make_destination("coralogix", "cx", {"api_key": "cxtp_0123456789abcdef"})
    assert everything.filter.matches("x", "", "")


def test_request_urls_never_reach_the_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Sumo Logic source URL is the secret, and httpx logs every URL at INFO."""
    import logging

    from authtrail.cli import setup_logging as _setup_logging
    from schemas.settings import Settings

    monkeypatch.setenv("AUTHTRAIL_LOG_LEVEL", "DEBUG")
    _setup_logging(Settings())
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("httpcore").getEffectiveLevel() == logging.WARNING


# A change of each platform's address settings, away from VALID.
MOVES: list[tuple[str, dict[str, str]]] = [
    ("datadog", {"endpoint": "https://collector.attacker.example"}),
    ("datadog", {"site": "datadoghq.com"}),
    ("eventbridge", {"endpoint": "https://events.attacker.example"}),
    ("eventbridge", {"region": "us-east-1"}),
    ("splunk", {"url": "https://splunk.attacker.example:8088"}),
    ("splunk", {"endpoint": "https://splunk.attacker.example:8088"}),
    ("splunk", {"verify_tls": "false"}),
    ("sumologic", {"endpoint": "https://sumo.attacker.example"}),
    ("coralogix", {"domain": "us1"}),
    ("coralogix", {"endpoint": "https://cx.attacker.example"}),
]


@pytest.mark.parametrize(("platform", "move"), MOVES, ids=lambda v: str(v))
def test_a_stored_secret_never_follows_a_changed_address(
    platform: str, move: dict[str, str]
) -> None:
    current = make_destination(platform, "prod", VALID[platform])
    secrets = [k for k in SETTINGS_MODELS[platform].SECRETS if VALID[platform].get(k)]
    assert secrets, platform
    with pytest.raises(DestinationError) as refused:
        updated_destination(current, None, move)
    assert refused.value.field == secrets[0]
    assert "given again" in refused.value.message
    assert "attacker" not in str(refused.value)
    for secret in secrets:  # never echoed
        assert VALID[platform][secret] not in str(refused.value)

    # With every secret given again the move is taken.
    again = {k: VALID[platform][k] for k in secrets}
    moved = updated_destination(current, None, {**move, **again})
    assert address_changes(current.settings, moved.settings)


@pytest.mark.parametrize("platform", sorted(VALID))
def test_other_changes_keep_the_stored_secret(platform: str) -> None:
    current = make_destination(platform, "prod", VALID[platform])
    renamed = updated_destination(current, "prod (audit)", {"filter.outcomes": "failure"})
    assert renamed.settings == current.settings
    assert renamed.name == "prod (audit)"


def test_leaving_the_credentials_for_the_default_chain_needs_no_secret() -> None:
    current = make_destination("eventbridge", "bus", VALID["eventbridge"])
    moved = updated_destination(
        current, None, {"region": "us-east-1", "access_key_id": None, "secret_access_key": None}
    )
    assert moved.settings.secret_access_key is None  # type: ignore[attr-defined]
