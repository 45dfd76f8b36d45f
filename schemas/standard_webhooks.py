"""Standard Webhooks v1 signatures (https://www.standardwebhooks.com/, specification v1).

Every request carries three headers:

* ``webhook-id``: the message's id. Here it is derived from the destination and the exact
  body, so a batch sent again (a retry, a re-delivery after a restart) keeps its id and a
  receiver can drop what it already took;
* ``webhook-timestamp``: the attempt's time, integer Unix seconds (receivers refuse one
  more than five minutes from their clock, so each attempt is signed afresh);
* ``webhook-signature``: space-separated ``v1,<signature>``, one per secret in use (two
  while a rotated secret's grace period runs), where ``<signature>`` is the standard
  base64 of HMAC-SHA256 over ``{webhook-id}.{webhook-timestamp}.{body}`` keyed with the
  bytes the secret's base64 (after ``whsec_``) encodes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SECRET_BYTES = 32  # what ``new_secret`` draws; the specification asks for 24 to 64


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_`` secret encodes. Raises ``ValueError`` (never quoting the
    secret) when it is not ``whsec_`` and base64 of 24 to 64 bytes."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"must start with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        raise ValueError(f"must be {SECRET_PREFIX} and standard base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError("must encode 24 to 64 bytes")
    return key


def message_id(scope: str, body: bytes) -> str:
    """``msg_`` and 26 characters of the SHA-256 of ``scope`` (the destination) and the
    body: the same batch to the same destination always has the same id."""
    digest = hashlib.sha256(scope.encode() + b"\x00" + body).digest()
    return "msg_" + base64.b32encode(digest[:16]).decode().rstrip("=").lower()


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of a message."""
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(
    keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three headers of a message signed with every key in ``keys`` (at least one)."""
    if not keys:
        raise ValueError("a webhook is signed with at least one secret")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(key, msg_id, timestamp, body) for key in keys),
    }
