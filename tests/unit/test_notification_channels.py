"""Notification channels as data: a webhook's settings (secret made when not given, header
values write-only), bad input naming the key, and sealed at rest like destinations."""

from __future__ import annotations

import secrets

import pytest

from connectors.notify.channels import from_record, to_record
from infra.secrets import SecretBox
from schemas.destinations import DestinationError
from schemas.keys import KeyRing
from schemas.notifications import make_channel


def test_a_channel_is_a_signed_webhook_sealed_at_rest() -> None:
    channel = make_channel(
        "webhook", "ops", {"url": "https://hooks.example/in", "headers.X-Token": "tok_12345678"}
    )
    secret = channel.settings.secret.get_secret_value()
    assert secret.startswith("whsec_")
    box = SecretBox(KeyRing(secrets.token_bytes(32)))
    record = to_record(channel, box)
    assert secret.encode() not in record and b"tok_12345678" not in record
    assert from_record(record, box) == channel


@pytest.mark.parametrize(
    ("kind", "values", "field"),
    [
        ("email", {"url": "https://h.example"}, "kind"),
        ("webhook", {}, "url"),
        ("webhook", {"url": "ftp://h.example"}, "url"),
        ("webhook", {"url": "https://h.example", "secret": "plain"}, "secret"),
        ("webhook", {"url": "https://h.example", "filter.outcomes": "failure"}, "filter.outcomes"),
        ("webhook", {"url": "https://h.example", "transform.ip": "mask"}, "transform.ip"),
    ],
)
def test_bad_channels_name_the_key(kind: str, values: dict[str, str], field: str) -> None:
    with pytest.raises(DestinationError) as refused:
        make_channel(kind, "ops", values)
    assert refused.value.field == field
