"""The query language's parser and its SQL: the tree each form gives, the errors (position
and what was expected), and that no value of a query ever reaches the SQL text (only
``{qN:Type}`` placeholders do). What the queries match is tested against an oracle over
real stored events in ``tests/integration/test_query_language.py``."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from query_api.query_language import (
    FIELDS,
    MAX_DEPTH,
    MAX_TERMS,
    And,
    Attribute,
    Bare,
    Match,
    Moment,
    Not,
    Or,
    QueryError,
    Search,
    parse,
)
from query_api.sql import condition


def test_each_form_gives_its_tree() -> None:
    assert parse("account:acc_1") == Match("account", "acc_1")
    assert parse("type:OIDC.*") == Match("type", "oidc.", prefix=True)
    assert parse("ip:10.1.2.3/8") == Match("ip", "10.0.0.0/8", network=True)
    assert parse("ip:[2001:DB8::1]") == Match("ip", "2001:db8::1")
    assert parse("ip:::ffff:10.1.2.3") == Match("ip", "10.1.2.3")  # IPv4-mapped: folded
    assert parse("country:ie") == Match("country", "IE")
    assert parse("trace:ABCDEF0123456789") == Match("trace", "abcdef0123456789")
    assert parse('ua:"Mozilla/5.0 (X11"') == Match("ua", "Mozilla/5.0 (X11")
    assert parse('reason:"say \\"no\\" \\\\ ok"') == Match("reason", 'say "no" \\ ok')
    assert parse("attributes.device.os:ios") == Attribute(("device", "os"), "ios")
    assert parse("user:anonymous") == Match("user", "anonymous")
    day = datetime(2026, 11, 1, tzinfo=UTC)
    assert parse("time:2026-11-01") == Moment(day, datetime(2026, 11, 2, tzinfo=UTC))
    assert parse("time:>=2026-11-01") == Moment(day, None)
    assert parse("time:>2026-11-01") == Moment(datetime(2026, 11, 2, tzinfo=UTC), None)
    assert parse("time:<2026-11-01") == Moment(None, day)
    assert parse("time:[2026-11-01 TO *]") == Moment(day, None)
    assert parse("time:{2026-11-01T00:00:00Z TO 2026-11-01T00:00:01+00:00}") == Moment(
        datetime(2026, 11, 1, 0, 0, 0, 1000, tzinfo=UTC), datetime(2026, 11, 1, 0, 0, 1, tzinfo=UTC)
    )
    # A date is its day in the request's time zone.
    assert parse("time:2026-11-01", "Asia/Kolkata") == Moment(
        datetime(2026, 10, 31, 18, 30, tzinfo=UTC), datetime(2026, 11, 1, 18, 30, tzinfo=UTC)
    )


def test_bare_terms_keep_the_rules_from_before() -> None:
    assert parse("login.") == Bare(Search("event_key_prefix", "login."))
    assert parse("2001:db8::1") == Bare(Search("ip", "2001:db8::1"))
    assert parse("ABCDEF0123456789ab") == Bare(Search("trace_id", "abcdef0123456789ab"))
    assert parse("Firefox") == Bare(Search("text", "Firefox"))
    assert parse('"two words"') == Bare(Search("text", "two words"))
    # Operators are capitals: in lower case they are words.
    assert parse("and or not") == And(
        (Bare(Search("text", "and")), Bare(Search("text", "or")), Bare(Search("text", "not")))
    )


def test_precedence_and_negation() -> None:
    a, b, c = (Bare(Search("text", x)) for x in "abc")
    assert parse("a OR b c") == Or((a, And((b, c))))
    assert parse("a OR b AND c") == Or((a, And((b, c))))
    assert parse("(a OR b) c") == And((Or((a, b)), c))
    assert parse("NOT a b") == And((Not(a), b))
    assert parse("-a -(b OR c)") == And((Not(a), Not(Or((b, c)))))
    assert parse("a - b") == And((a, Bare(Search("text", "-")), b))  # a lone dash is a word
    assert parse("NOT NOT a") == Not(Not(a))


@pytest.mark.parametrize(
    ("q", "position", "expected"),
    [
        ("acount:acme", 0, "a field"),
        ("http://x", 0, "a field"),
        ("type:", 5, "a value after 'type:'"),
        ("type:login failed:x", 11, "a field"),
        ("(a OR b", 7, "')' to close the '(' at position 0"),
        ("a)", 1, "this ')' closes nothing"),
        ("a AND", 5, "a term"),
        ("OR a", 0, "a term"),
        ("NOT", 3, "a term"),
        ("", 0, "a term"),
        ("ip:10.0.0.300", 3, "an IP address or a CIDR network"),
        ("type:login..failed", 5, "an event key"),
        ("outcome:maybe", 8, "success or failure"),
        ('ua:"open', 3, "a closing '\"'"),
        ("time:yesterday", 5, "a date"),
        ("time:2026-11-01T12:00:00", 5, "a date-time with its offset"),
        ("time:2026-11-01T12:00:00Z", 5, "a comparison"),
        ("time:[2026-11-02 TO 2026-11-01]", 5, "a range whose start is before its end"),
        ("time:[2026-11-01 2026-11-02]", 17, "TO"),
        ("time:[2026-11-01 TO 2026-11-02", 30, "']'"),
        ("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1), MAX_DEPTH, "levels of nesting"),
    ],
)
def test_errors_name_the_position_and_what_was_expected(
    q: str, position: int, expected: str
) -> None:
    with pytest.raises(QueryError) as raised:
        parse(q)
    assert raised.value.position == position, str(raised.value)
    assert expected in str(raised.value)
    assert str(raised.value).startswith(f"at position {position}: expected")


def test_size_is_bounded() -> None:
    with pytest.raises(QueryError, match="terms"):
        parse(" ".join(["a"] * (MAX_TERMS + 1)))
    with pytest.raises(QueryError, match="characters"):
        parse("a" * 1025)


# -- no value reaches the SQL text --------------------------------------------------------
_SQL_WORDS = {
    *["AND", "OR", "NOT", "BETWEEN"],
    *[
        "account_id",
        "actor_id",
        "actor_email",
        "actor_display",
        "event_key",
        "description",
        "user_agent",
        "trace_id",
        "ip",
        "country",
        "reason",
        "ua_browser",
        "ua_os",
        "outcome",
        "occurred_at",
        "attributes",
    ],
    *[
        "startsWith",
        "positionCaseInsensitiveUTF8",
        "JSONExtractString",
        "JSONExtractRaw",
        "isIPv4String",
        "isIPv6String",
        "toIPv4OrZero",
        "toIPv6OrZero",
        "toIPv4",
        "toIPv6",
    ],
    "0",
    "1",
}
_TOKENS = st.sampled_from(
    [
        *(f"{f}:" for f in FIELDS),
        "attributes.a.b:",
        "AND",
        "OR",
        "NOT",
        "-",
        "(",
        ")",
        '"',
        "[",
        "]",
        "{",
        "}",
        " TO ",
        ">=",
        "<",
        "*",
        "2026-11-01",
        "10.0.0.0/8",
        "2001:db8::/32",
        "oidc.*",
        "login.failed",
        "success",
        "zzq'; DROP TABLE x --",
        "Ωmega",
        "acc_1",
        "\\",
        " ",
    ]
)


@given(st.lists(_TOKENS, max_size=12).map("".join))
@settings(max_examples=600, deadline=None)
def test_any_text_parses_into_bound_sql_or_is_refused(q: str) -> None:
    try:
        tree = parse(q)
    except QueryError as exc:
        assert re.match(r"at position \d+: expected ", str(exc))
        assert 0 <= exc.position <= len(q)
        return
    params: dict[str, object] = {}
    sql = condition(tree, params)
    skeleton = re.sub(r"\{q\d+_*:(String|DateTime64\(3, 'UTC'\))\}", " ", sql)
    skeleton = skeleton.replace("''", " ")  # the only literal: the empty text of anonymous
    words = re.findall(r"[^\s(),=<>]+", skeleton)
    assert set(words) <= _SQL_WORDS, (q, sql)
    assert all(re.fullmatch(r"q\d+_*", name) for name in params)
