"""The normalizer's fast path: the canonical v1 shape (and the flat alternative spellings)
decoded straight into typed structs (msgspec), with the contract's own validators applied,
cached where values repeat (event keys, emails, IPs). ``Refused`` means the fast path
cannot vouch for a value: the general path (the pydantic contract) decides and words the
error."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import msgspec

from pipeline.aliases import ALIASES
from schemas import events as contract


class FastAccount(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    name: str | None = None


class FastActor(msgspec.Struct, forbid_unknown_fields=True):
    id: str | None = None
    email: str | None = None
    type: str | None = None


class FastEvent(msgspec.Struct):
    """The v1 shape and the flat alternative spellings (mapped by ``resolved``). Unknown
    fields are ignored: they stay in ``raw``."""

    event_key: str
    occurred_at: str | int | float | None = None
    event_id: str | None = None
    account: FastAccount | None = None
    actor: FastActor | None = None
    ip: str | None = None
    user_agent: str | None = None
    trace_id: str | None = None
    outcome: str | None = None
    reason: str | None = None
    attributes: dict[str, Any] | None = None
    timestamp: Any = msgspec.UNSET
    ts: Any = msgspec.UNSET
    ip_address: Any = msgspec.UNSET
    client_ip: Any = msgspec.UNSET
    userAgent: Any = msgspec.UNSET
    traceId: Any = msgspec.UNSET
    account_id: Any = msgspec.UNSET
    account_name: Any = msgspec.UNSET
    user_id: Any = msgspec.UNSET
    user_email: Any = msgspec.UNSET


ALTERNATIVES = (
    *(alias for _, aliases in ALIASES for alias in aliases),
    "account_id",
    "account_name",
    "user_id",
    "user_email",
)
DECODER = msgspec.json.Decoder(FastEvent)
UNSET = msgspec.UNSET


def canonical_only(raw: FastEvent) -> bool:
    # Spelled out rather than a loop over ALTERNATIVES: this runs for every event.
    return (
        raw.timestamp is UNSET
        and raw.ts is UNSET
        and raw.ip_address is UNSET
        and raw.client_ip is UNSET
        and raw.userAgent is UNSET
        and raw.traceId is UNSET
        and raw.account_id is UNSET
        and raw.account_name is UNSET
        and raw.user_id is UNSET
        and raw.user_email is UNSET
    )


CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ACTOR_TYPES = frozenset({"user", "agent", "service", "anonymous"})
OUTCOMES = frozenset({"success", "failure"})


def alias(current: Any, *alternatives: Any, types: tuple[type, ...] = (str,)) -> Any:
    """``pipeline.aliases.canonical``'s rule: the v1 value unless it is null, else the
    first alternative present and not null. Values of other types are left to the general
    path."""
    for value in alternatives:
        if value is not UNSET and current is None:
            current = value
    if current is not None and (isinstance(current, bool) or not isinstance(current, types)):
        raise Refused
    return current


def flat_pair(first: Any, second: Any) -> tuple[str | None, str | None] | None:
    """Two flat fields (``account_id``/``account_name``, ``user_id``/``user_email``) as
    strings, or None when neither is given."""
    first = None if first is UNSET else first
    second = None if second is UNSET else second
    if first is None and second is None:
        return None
    if not isinstance(first, str | None) or not isinstance(second, str | None):
        raise Refused
    return first, second


def resolved(raw: FastEvent) -> FastEvent:
    """The event with the alternative spellings mapped onto v1, as
    ``pipeline.aliases.canonical`` does."""
    account, actor = raw.account, raw.actor
    if account is None and (flat := flat_pair(raw.account_id, raw.account_name)) is not None:
        if flat[0] is None:
            raise Refused  # a name without an id: the general path words the error
        account = FastAccount(id=flat[0], name=flat[1])
    if actor is None and (flat := flat_pair(raw.user_id, raw.user_email)) is not None:
        actor = FastActor(id=flat[0], email=flat[1])
    return msgspec.structs.replace(
        raw,
        occurred_at=alias(raw.occurred_at, raw.timestamp, raw.ts, types=(str, int, float)),
        ip=alias(raw.ip, raw.ip_address, raw.client_ip),
        user_agent=alias(raw.user_agent, raw.userAgent),
        trace_id=alias(raw.trace_id, raw.traceId),
        account=account,
        actor=actor,
    )


class Refused(Exception):
    """The fast path cannot vouch for a value; the general path decides."""


# What pydantic's ``strip_whitespace`` strips (Unicode White_Space). ``str.strip()``
# also strips U+001C..U+001F, and would then disagree with the contract.
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000")
)


def checked_text(value: str, max_length: int, check: Callable[[str], str] | None = None) -> str:
    """``RawEventV1``'s string rules: stripped, 1..max_length, then its validator."""
    text = value.strip(WHITESPACE)
    if not 0 < len(text) <= max_length:
        raise Refused
    if check is None:
        return text
    try:
        return check(text)
    except ValueError:
        raise Refused from None


@lru_cache(maxsize=4096)
def valid_event_key(value: str) -> str:
    return checked_text(value, contract.MAX_EVENT_KEY, contract.check_event_key)


@lru_cache(maxsize=65536)
def valid_email(value: str) -> str:
    return checked_text(value, contract.MAX_EMAIL, contract.check_email)


@lru_cache(maxsize=65536)
def valid_ip(value: str) -> str:
    return checked_text(value, contract.MAX_IP, contract.normalize_ip)


def valid_event_id(value: str) -> str:
    text = value.strip(WHITESPACE)
    if CANONICAL_UUID.fullmatch(text):
        return text
    return checked_text(value, contract.MAX_EVENT_ID, contract.check_event_id)
