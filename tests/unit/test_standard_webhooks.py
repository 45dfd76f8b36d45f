"""Standard Webhooks signatures, verified by the specification's own ``standardwebhooks``
package rather than by our code."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from schemas.standard_webhooks import (
    message_id,
    new_secret,
    secret_key,
    signature,
    signed_headers,
)

BODY = b'[{"event_id":"e1","actor_email":"alice@acme.io"}]'


def test_signature_verifies_with_the_reference_library() -> None:
    secret = new_secret()
    now = int(time.time())
    headers = signed_headers([secret_key(secret)], message_id("dest", BODY), now, BODY)
    assert Webhook(secret).verify(BODY, headers) == [
        {"event_id": "e1", "actor_email": "alice@acme.io"}
    ]
    assert headers["webhook-timestamp"] == str(now)
    assert headers["webhook-signature"].startswith("v1,")


def test_signature_matches_the_specification_example() -> None:
    # The example of the specification (and of the reference library's own tests).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    msg_id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    timestamp = 1614265330
    body = b'{"test": 2432232314}'
    assert (
        signature(secret_key(secret), msg_id, timestamp, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_every_key_signs_during_a_rotation() -> None:
    old, new = new_secret(), new_secret()
    headers = signed_headers([secret_key(new), secret_key(old)], "msg_x", int(time.time()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY, headers)  # a receiver not yet rotated
    Webhook(new).verify(BODY, headers)  # a receiver already rotated
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_a_changed_body_or_a_stale_timestamp_does_not_verify() -> None:
    secret = new_secret()
    now = int(time.time())
    headers = signed_headers([secret_key(secret)], "msg_x", now, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)
    stale = signed_headers([secret_key(secret)], "msg_x", now - 600, BODY)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, stale)


def test_message_id_is_stable_per_destination_and_body() -> None:
    assert message_id("d1", BODY) == message_id("d1", BODY)
    assert message_id("d1", BODY) != message_id("d2", BODY)
    assert message_id("d1", BODY) != message_id("d1", BODY + b" ")
    assert message_id("d1", BODY).startswith("msg_") and len(message_id("d1", BODY)) == 30


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"),
        ("whsec_not base64!", "base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes"),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), "24 to 64 bytes"),
    ],
)
def test_bad_secrets_are_refused_without_quoting_them(secret: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as caught:
        secret_key(secret)
    assert secret.removeprefix("whsec_") not in str(caught.value)


def test_new_secrets_are_fresh_and_valid() -> None:
    first, second = new_secret(), new_secret()
    assert first != second
    assert len(secret_key(first)) == 32
