"""The rewrite of an erased person's event (``schemas.erasure``): every copy of the
person's values becomes a stable pseudonym, nothing else changes, erasing twice changes
nothing, and erasures recognise the person only where they apply."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from schemas.erasure import (
    PSEUDONYM_PREFIX,
    ErasureRecord,
    ErasureSet,
    Pseudonyms,
    erase_event,
)

KEYS = Pseudonyms(b"k" * 32)
PERSON = {
    "event_id": "e1",
    "account_id": "acc_1",
    "actor_id": "usr_1",
    "actor_email": "ann@acme.io",
    "actor_display": "ann@acme.io",
    "ip": "203.0.113.9",
    "user_agent": "AnnBrowser/1",
    "country": "IE",
    "attributes": {"contact": "ann@acme.io", "list": ["203.0.113.9", 3], "plan": "pro"},
    "raw": orjson.dumps(
        {"actor": {"id": "usr_1", "email": "ann@acme.io"}, "ip": "203.0.113.9", "n": 1}
    ).decode(),
}
CLEAR = ("usr_1", "ann@acme.io", "203.0.113.9", "AnnBrowser/1")


def record(macs: list[str], account: str | None = None) -> ErasureRecord:
    return ErasureRecord(
        id="er_0123456789abcdef",
        subject="erased:x",
        subject_macs=macs,
        account=account,
        requested_by="t",
        requested_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


def test_every_copy_of_the_persons_values_is_a_pseudonym() -> None:
    erased = erase_event(PERSON, KEYS)
    text = orjson.dumps(erased).decode()
    for value in CLEAR:
        assert value not in text
    for name in ("actor_id", "actor_email", "actor_display", "ip", "user_agent"):
        assert erased[name].startswith(PSEUDONYM_PREFIX), name
    assert erased["actor_display"] == erased["actor_email"]
    assert erased["attributes"]["plan"] == "pro" and erased["attributes"]["list"][1] == 3
    assert erased["attributes"]["contact"] == erased["actor_email"]
    assert orjson.loads(erased["raw"])["ip"] == erased["ip"]
    assert (erased["country"], erased["event_id"]) == ("IE", "e1")


def test_pseudonyms_are_stable_and_keyed() -> None:
    assert erase_event(PERSON, KEYS) == erase_event(dict(PERSON), KEYS)
    other = erase_event(PERSON, Pseudonyms(b"o" * 32))
    assert other["actor_id"] != erase_event(PERSON, KEYS)["actor_id"]


def test_erasing_twice_changes_nothing() -> None:
    once = erase_event(PERSON, KEYS)
    assert erase_event(once, KEYS) == once


def test_anonymous_stays_anonymous() -> None:
    event = {**PERSON, "actor_display": "anonymous", "actor_id": "", "actor_email": ""}
    assert erase_event(event, KEYS)["actor_display"] == "anonymous"


def test_an_erasure_recognises_its_person_by_id_or_email_and_only_where_it_applies() -> None:
    everywhere = ErasureSet(KEYS, [record([KEYS.mac("usr_1")])])
    assert everywhere.covers("usr_1", "", "acc_9")
    assert not everywhere.covers("usr_2", "bob@acme.io", "acc_1")
    by_email = ErasureSet(KEYS, [record([KEYS.mac("Ann@Acme.io")], account="acc_1")])
    assert by_email.covers("", "ann@acme.io", "acc_1")  # e-mails without case
    assert not by_email.covers("", "ann@acme.io", "acc_2")
    assert not ErasureSet(KEYS, [])


def test_erased_value_leaves_other_events_byte_for_byte() -> None:
    erasures = ErasureSet(KEYS, [record([KEYS.mac("usr_1")])])
    theirs = orjson.dumps({**PERSON, "actor_id": "usr_2", "actor_email": "bob@acme.io"})
    assert erasures.erased_value(theirs) is theirs
    assert b"usr_1" not in erasures.erased_value(orjson.dumps(PERSON))
    assert erasures.erased_value(b"not json") == b"not json"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)  # what JSON carries between systems
    | st.sampled_from(CLEAR)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(CLEAR) | st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(attributes=st.dictionaries(st.text(max_size=6), json_values, max_size=5), raw=json_values)
def test_no_clear_value_survives_anywhere_in_attributes_or_raw(
    attributes: dict[str, Any], raw: Any
) -> None:
    event = {**PERSON, "attributes": attributes, "raw": orjson.dumps(raw).decode()}
    erased = erase_event(event, KEYS)
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for name, item in value.items():
                found.append(name)
                walk(item)

    walk(erased["attributes"])
    walk(orjson.loads(erased["raw"]))
    assert not set(found) & set(CLEAR)
