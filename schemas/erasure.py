"""Erasure of a person (GDPR Art. 17): what is asked, what is kept, and the rewrite of an
event that belongs to an erased person.

An erasure keeps no identifier of the person in the clear: it holds keyed hashes
(HMAC-SHA256 under a key derived from the installation's secret key) of the person's ids
and e-mail addresses, enough to recognise the person's events, stored or still to come,
and nothing to read them back. In each of the person's events, ``actor_id``,
``actor_email``, ``actor_display``, ``ip`` and ``user_agent``, and every copy of those
values inside ``attributes`` and the raw event, are replaced by pseudonyms
``erased:<20 hex>``: the same value gives the same pseudonym, so the trail still shows that
one person did these things, and no one without the key can tell who."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
import orjson
from pydantic import BaseModel, Field, StringConstraints

from schemas.events import MAX_ID

PSEUDONYM_PREFIX = "erased:"
ERASED_EVENT_KEY = "privacy.user.erased"
# The event fields of a person, beside the raw event's and the attributes' copies.
PERSONAL_FIELDS = ("actor_id", "actor_email", "ip", "user_agent")

Identifier = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID)
]


class ErasureIn(BaseModel):
    """``POST /api/v1/erasures``."""

    user: Identifier = Field(description="The person's user id or e-mail address.")
    account: Identifier | None = Field(
        None, description="Only this account's events of the person (default: every account)."
    )


class ErasureRecord(BaseModel):
    """One erasure as the ``authtrail.erasures`` topic keeps it (no identifier in clear)."""

    id: str = Field(
        description="Derived from the person and the account: asking again is the same erasure."
    )
    subject: str = Field(description="The pseudonym of the identifier asked for.")
    subject_macs: list[str] = Field(
        description="Keyed hashes of every id and e-mail of the person found in the store."
    )
    account: str | None = None
    requested_by: str
    requested_at: datetime
    state: Literal["pending", "applied"] = "pending"
    applied_at: datetime | None = None
    events: int = Field(0, description="Stored events of the person rewritten.")
    dead_letters: int = Field(0, description="Destinations' dead letters rewritten.")


def identifier_text(value: str) -> str:
    """An identifier as it is hashed: e-mail addresses are compared without case."""
    text = value.strip()
    return text.lower() if "@" in text else text


class Pseudonyms:
    """Keyed hashes and pseudonyms under the installation's erasure key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @property
    def key_hex(self) -> str:
        """For the store's own ``HMAC`` (a bound parameter, never logged)."""
        return self._key.hex()

    def mac(self, identifier: str) -> str:
        """The hex HMAC-SHA256 of an id or e-mail (see ``identifier_text``)."""
        message = identifier_text(identifier).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def pseudonym(self, value: str) -> str:
        digest = hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:20]

    def erasure_id(self, user: str, account: str | None) -> str:
        return "er_" + self.mac(f"{identifier_text(user)}\x00{account or ''}")[:16]


def _replace_strings(value: Any, replacements: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return replacements.get(value, value)
    if isinstance(value, list):
        return [_replace_strings(item, replacements) for item in value]
    if isinstance(value, dict):
        return {replacements.get(k, k): _replace_strings(v, replacements) for k, v in value.items()}
    return value


def erase_event(event: Mapping[str, Any], pseudonyms: Pseudonyms) -> dict[str, Any]:
    """``event`` (a normalized event or a stored row, as a dict) with the person's values
    replaced by their pseudonyms, wherever they occur in it: the personal fields, the
    attributes (a dict or its JSON text) and the raw event (JSON text). Values that are
    already pseudonyms stay as they are, so erasing twice changes nothing."""
    replacements: dict[str, str] = {}
    for name in PERSONAL_FIELDS:
        value = event.get(name)
        if isinstance(value, str) and value and not value.startswith(PSEUDONYM_PREFIX):
            replacements[value] = pseudonyms.pseudonym(value)
    out = dict(event)
    for name in PERSONAL_FIELDS:
        value = out.get(name)
        if isinstance(value, str) and value in replacements:
            out[name] = replacements[value]
    display = out.get("actor_display")
    if isinstance(display, str) and display != "anonymous":
        out["actor_display"] = replacements.get(display) or (
            out.get("actor_email") or out.get("actor_id") or display
        )
    if replacements:
        for name in ("attributes", "raw"):  # JSON text (a stored row), or decoded
            value = out.get(name)
            if isinstance(value, str) and value:
                out[name] = _rewrite_json_text(value, replacements)
            elif isinstance(value, dict | list):
                out[name] = _replace_strings(value, replacements)
    return out


def _rewrite_json_text(text: str, replacements: Mapping[str, str]) -> str:
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        # Not JSON (never so for what ingest stores): the values are replaced as text.
        for clear, pseudonym in replacements.items():
            text = text.replace(clear, pseudonym)
        return text
    return orjson.dumps(_replace_strings(document, replacements)).decode()


class _Actor(msgspec.Struct):
    """What an erased person's event is recognised by (the rest is skipped unread)."""

    account_id: str = ""
    actor_id: str = ""
    actor_email: str = ""


_ACTOR = msgspec.json.Decoder(_Actor)


class ErasureSet:
    """The erasures in force, for recognising an erased person's events: the keyed hashes
    of the people erased everywhere, and per account of those erased in one account."""

    def __init__(self, pseudonyms: Pseudonyms, records: Iterable[ErasureRecord]) -> None:
        self.pseudonyms = pseudonyms
        self._everywhere: set[str] = set()
        self._per_account: dict[str, set[str]] = {}
        for record in records:
            target = (
                self._everywhere
                if record.account is None
                else self._per_account.setdefault(record.account, set())
            )
            target.update(record.subject_macs)

    def __bool__(self) -> bool:
        return bool(self._everywhere or self._per_account)

    def erased(self, normalized: bytes) -> dict[str, Any] | None:
        """A normalized event (JSON) erased, when it is an erased person's; else None
        (after reading only the three fields that tell)."""
        try:
            actor = _ACTOR.decode(normalized)
        except msgspec.DecodeError:
            return None
        if not self.covers(actor.actor_id, actor.actor_email, actor.account_id):
            return None
        event = orjson.loads(normalized)
        return erase_event(event, self.pseudonyms) if isinstance(event, dict) else None

    def erased_value(self, normalized: bytes) -> bytes:
        """``normalized`` as it may leave the installation: erased when it is an erased
        person's event, else as it is."""
        if not self:
            return normalized
        event = self.erased(normalized)
        return normalized if event is None else orjson.dumps(event)

    def covers(self, actor_id: str, actor_email: str, account_id: str) -> bool:
        """Whether an event of this actor in this account belongs to an erased person."""
        if not actor_id and not actor_email:
            return False
        scoped = self._per_account.get(account_id)
        for identifier in (actor_id, actor_email):
            if identifier and not identifier.startswith(PSEUDONYM_PREFIX):
                mac = self.pseudonyms.mac(identifier)
                if mac in self._everywhere or (scoped is not None and mac in scoped):
                    return True
        return False
