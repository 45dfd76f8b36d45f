"""Bodies of ``POST /api/v1/events``: what is read as events, what is refused and how the
refusal names the place (the line of an NDJSON body, the line and column of a JSON one)."""

from __future__ import annotations

import gzip

import orjson
import pytest

from authtrail.produce import event_key
from pipeline.normalize import derive_event_id
from query_api.event_intake import IntakeError, check_account, decompress, parse_events

LOGIN = {"event_key": "login.completed", "occurred_at": 1764000000000, "account": {"id": "acc_1"}}


def test_an_object_is_one_event_sent_as_received() -> None:
    body = b'  {"event_key": "login.completed", "occurred_at": 1, "account": {"id": "a"}}\n'
    [event] = parse_events(body, "application/json")
    assert event.value == body.strip()
    assert event.key == b"a"  # the key rule of `authtrail produce`
    assert event.event_id == derive_event_id(orjson.loads(body))


def test_an_array_is_its_elements_in_order_each_with_its_id() -> None:
    given = {**LOGIN, "event_id": "evt-1"}
    events = parse_events(orjson.dumps([given, LOGIN, 7]), "application/json; charset=utf-8")
    assert [e.index for e in events] == [0, 1, 2]
    assert [e.event_id for e in events] == ["evt-1", derive_event_id(LOGIN), None]
    assert orjson.loads(events[1].value) == LOGIN
    assert events[1].key == event_key(events[1].value) == b"acc_1"


def test_the_same_event_gets_the_same_id_whatever_its_layout() -> None:
    compact = parse_events(orjson.dumps(LOGIN), "application/json")[0]
    spaced = parse_events(orjson.dumps(LOGIN, option=orjson.OPT_INDENT_2), "application/json")
    assert compact.event_id == spaced[0].event_id


def test_ndjson_lines_keep_their_bytes_and_blank_lines_are_skipped() -> None:
    lines = [orjson.dumps({**LOGIN, "n": n}) for n in range(3)]
    body = lines[0] + b"\n\n" + lines[1] + b"\r\n" + lines[2]
    events = parse_events(body, "application/x-ndjson")
    assert [e.value for e in events] == lines


def test_ndjson_that_is_not_json_names_its_line() -> None:
    body = orjson.dumps(LOGIN) + b"\n" + orjson.dumps(LOGIN) + b"\n{not json\n"
    with pytest.raises(IntakeError) as refused:
        parse_events(body, "application/x-ndjson")
    assert refused.value.status == 400
    assert refused.value.parameter == "line 3"
    assert "line 3" in refused.value.message


def test_json_that_is_not_json_names_line_and_column() -> None:
    with pytest.raises(IntakeError) as refused:
        parse_events(b'[\n  {"event_key": "a"},\n  {oops}\n]', "application/json")
    assert refused.value.status == 400
    assert refused.value.parameter == "line 3"
    assert "column" in refused.value.message


@pytest.mark.parametrize("body", [b"[]", b"", b"\n\n"])
def test_a_body_without_events_is_refused(body: bytes) -> None:
    media = "application/x-ndjson" if body.strip() == b"" else "application/json"
    with pytest.raises(IntakeError) as refused:
        parse_events(body, media)
    assert refused.value.status == 400


def test_other_media_types_are_refused_naming_the_header() -> None:
    with pytest.raises(IntakeError) as refused:
        parse_events(b"event_key=a", "application/x-www-form-urlencoded")
    assert (refused.value.status, refused.value.parameter) == (415, "Content-Type")


def test_gzip_is_inflated() -> None:
    body = orjson.dumps([LOGIN] * 3)
    assert decompress(gzip.compress(body), "gzip", 10_000) == body
    assert decompress(body, None, 10_000) == body


def test_an_inflated_body_over_the_limit_is_413() -> None:
    bomb = gzip.compress(b" " * 5_000_000)
    assert len(bomb) < 10_000
    with pytest.raises(IntakeError) as refused:
        decompress(bomb, "gzip", 1_000_000)
    assert refused.value.status == 413


@pytest.mark.parametrize(
    ("body", "encoding", "status"),
    [(b"not gzip", "gzip", 400), (gzip.compress(b"{}")[:-6], "gzip", 400), (b"{}", "br", 415)],
)
def test_bad_encodings_are_refused(body: bytes, encoding: str, status: int) -> None:
    with pytest.raises(IntakeError) as refused:
        decompress(body, encoding, 10_000)
    assert refused.value.status == status


def test_an_account_bound_producer_writes_its_account_only() -> None:
    ours = {**LOGIN, "account": {"id": "acc_1"}}
    flat = {"event_key": "login.completed", "occurred_at": 1, "account_id": "acc_1"}
    check_account(parse_events(orjson.dumps([ours, flat]), "application/json"), "acc_1")
    check_account(parse_events(orjson.dumps([{"event_key": "x"}]), "application/json"), None)
    for other in ({**LOGIN, "account": {"id": "acc_2"}}, {"event_key": "x"}, [1]):
        events = parse_events(orjson.dumps([ours, other]), "application/json")
        with pytest.raises(IntakeError) as refused:
            check_account(events, "acc_1")
        assert (refused.value.status, refused.value.parameter) == (403, "body[1].account.id")
