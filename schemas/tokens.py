"""API tokens: the record kept (hashed) in the compacted ``authtrail.tokens`` topic, and
the token text users hold.

A token reads ``at_<id>_<secret>``: the id finds the record, the secret (256 random bits)
is checked against its SHA-256. A slow password hash adds nothing for secrets of that
entropy; the plaintext is shown once, at creation, and stored nowhere."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from schemas.events import utc_now_ms

Role = Literal["admin", "viewer", "producer"]
# What each role may do: read events (viewer, admin), configure (admin), write events
# over HTTP (producer, which cannot read).
READERS: frozenset[str] = frozenset({"admin", "viewer"})
_TOKEN_RE = re.compile(r"^at_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")


class TokenRecord(BaseModel):
    """One API token as stored (no plaintext)."""

    id: str = Field(pattern=r"^[a-z0-9]{12}$")
    name: str = Field(max_length=200)
    role: Role
    account: str | None = Field(
        None, description="Only this account's events are visible (a producer: writable)."
    )
    secret_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: datetime
    expires_at: datetime | None = Field(None, description="Stops working then (none: never).")
    revoked_at: datetime | None = None
    read_only: bool = Field(
        False, description="Reads only, not even views of its own (the embeddable viewer's)."
    )

    @property
    def active(self) -> bool:
        """Neither revoked nor expired."""
        return self.revoked_at is None and not self.expired

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= utc_now_ms()

    @property
    def state(self) -> str:
        return "revoked" if self.revoked_at else "expired" if self.expired else "active"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token(
    role: Role,
    name: str,
    account: str | None = None,
    expires_at: datetime | None = None,
    read_only: bool = False,
) -> tuple[str, TokenRecord]:
    """A new token: (the plaintext to show once, the record to store). Admin tokens are
    never scoped to an account: they configure the Stream side, which spans every
    account. Raises ``ValueError`` for a scoped admin token."""
    if role == "admin" and account is not None:
        raise ValueError("admin tokens see every account: leave out --account, or use a viewer")
    token_id = "".join(secrets.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(12))
    secret = secrets.token_urlsafe(32)
    record = TokenRecord(
        id=token_id,
        name=name,
        role=role,
        account=account,
        secret_sha256=_digest(secret),
        created_at=utc_now_ms(),
        expires_at=expires_at,
        read_only=read_only,
    )
    return f"at_{token_id}_{secret}", record


def parse_token(text: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token text, else None."""
    match = _TOKEN_RE.fullmatch(text.strip())
    return (match.group(1), match.group(2)) if match else None


def verify(record: TokenRecord, secret: str) -> bool:
    """Constant-time check of ``secret`` against the record; revoked tokens never pass."""
    return record.active and hmac.compare_digest(record.secret_sha256, _digest(secret))
