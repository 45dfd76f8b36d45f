"""A destination's PII rules: which fields of an event it receives dropped, masked or
hashed. Names are the event's as users write them (``actor.email``); the rules are checked
when the destination is saved and applied by its connector before encoding
(``connectors.sinks.transform``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal, get_args

TransformAction = Literal["drop", "mask", "hash"]
ACTIONS: tuple[TransformAction, ...] = get_args(TransformAction)

# A rule's field -> the normalized event's field it acts on.
FIELDS: dict[str, str] = {
    "actor.email": "actor_email",
    "actor.id": "actor_id",
    "ip": "ip",
    "user_agent": "user_agent",
    "account.name": "account_name",
    "raw": "raw",
}
ATTRIBUTES_PREFIX = "attributes."
_ATTRIBUTE_PATH = re.compile(r"^[A-Za-z0-9_\-]{1,128}(\.[A-Za-z0-9_\-]{1,128}){0,7}$")
MAX_RULES = 64


def check_rule(field: str, action: object) -> TransformAction:
    """``action`` for ``field`` when both are valid. Raises ``ValueError`` saying why."""
    if action not in ACTIONS:
        raise ValueError(f"must be one of {', '.join(ACTIONS)}")
    if field.startswith(ATTRIBUTES_PREFIX):
        if not _ATTRIBUTE_PATH.fullmatch(field.removeprefix(ATTRIBUTES_PREFIX)):
            raise ValueError("an attribute path is names joined by dots (at most 8)")
    elif field not in FIELDS:
        raise ValueError(
            f"is not a field rules apply to ({', '.join(FIELDS)} or attributes.<path>)"
        )
    if field == "raw" and action == "mask":
        raise ValueError("raw (the event as received) can be dropped or hashed, not masked")
    return action


def check_rules(rules: Mapping[str, object]) -> dict[str, TransformAction]:
    """Every rule checked. Raises ``ValueError`` naming the first bad field."""
    if len(rules) > MAX_RULES:
        raise ValueError(f"at most {MAX_RULES} rules")
    checked: dict[str, TransformAction] = {}
    for field, action in rules.items():
        try:
            checked[field] = check_rule(field, action)
        except ValueError as exc:
            raise ValueError(f"{field}: {exc}") from None
    return checked
