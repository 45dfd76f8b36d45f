"""The Logs view's query language, the ``q`` parameter: what it says, parsed into a tree.

Grammar (the README and ``/api/v1/logs``'s OpenAPI description show it too)::

    query   := or
    or      := and ("OR" and)*
    and     := unary (["AND"] unary)*          juxtaposition is AND
    unary   := ("NOT" | "-") unary | "(" or ")" | term
    term    := field ":" value | "\"text\"" | word
    value   := word | "\"text\"" | time comparisons and ranges (``time`` only):
               (">=" | ">" | "<=" | "<") moment | "[" moment "TO" moment "]" (inclusive)
               | "{" moment "TO" moment "}" (exclusive; either moment may be "*")

``AND``, ``OR`` and ``NOT`` are operators in capitals only. A word runs to white space or a
parenthesis; ``"…"`` quotes anything (``\\"`` and ``\\\\`` inside). Fields:

* ``account:ID``; ``user:ID-or-email`` (``user:anonymous``: events without an actor);
* ``ip:ADDRESS`` or ``ip:CIDR`` (IPv4 or IPv6; an IPv4 network never matches IPv6
  addresses, nor the reverse); ``trace:ID`` (case-insensitive);
* ``type:KEY`` (exact; ``type:oidc.*`` for a prefix); ``outcome:success|failure``;
* ``ua:TEXT``, ``browser:TEXT``, ``os:TEXT`` (case-insensitive substring);
* ``country:CC``, ``reason:TEXT`` (exact; the country case-insensitive);
* ``attributes.PATH:VALUE`` (a value inside ``attributes``: text equal to VALUE, or a
  number or boolean whose JSON is VALUE);
* ``time:…``: a date (``2026-11-01``) stands for its whole day in the request's time
  zone, a date-time needs an offset (``2026-11-01T12:00:00Z``); ``time:DATE`` alone is that
  day.

A bare word or quoted text is searched as before (``query_api.filters.classify``: an IP
address, a trace id, an event key prefix, else text anywhere). A word that looks like
``name:value`` with an unknown name is refused (quote it to search for the text), except
an IP address (``2001:db8::1``). Errors (``QueryError``) name the position (0-based, in
characters) and what was expected there."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from schemas.events import normalize_ip

TEXT_FIELDS = ("account", "user", "ip", "type", "outcome", "trace", "ua", "country")
FIELDS = (*TEXT_FIELDS, "browser", "os", "reason", "time")
ATTRIBUTES = "attributes."
MAX_LENGTH = 1024
MAX_DEPTH = 16
MAX_TERMS = 64
_FIELD = re.compile(r"([a-z]+|attributes(?:\.[A-Za-z0-9_\-]{1,128}){1,8}):")
_NAME_LIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_EVENT_KEY = re.compile(r"[a-z0-9_\-]+(\.[a-z0-9_\-]+)*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_KEYWORDS = ("AND", "OR", "NOT")
_ENDS_WORD = " \t\r\n()"


class QueryError(ValueError):
    """``q`` is not a query of this language: ``position`` (0-based) and what was
    ``expected`` there."""

    def __init__(self, position: int, expected: str, found: str) -> None:
        super().__init__(f"at position {position}: expected {expected}, found {found}")
        self.position = position
        self.expected = expected


# -- bare terms: the search rules from before the language --------------------------------
SearchKind = Literal["ip", "trace_id", "event_key_prefix", "text"]
_HEX_TRACE = re.compile(r"^[0-9a-fA-F]{16,32}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOTTED_KEY = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]*)+$")


@dataclass(frozen=True, slots=True)
class Search:
    kind: SearchKind
    value: str


def classify(term: str) -> Search:
    """What a bare search term looks for:

    1. an IPv4 or IPv6 address (any notation Python's ``ipaddress`` accepts, IPv4-mapped
       IPv6 folded to IPv4) -> rows whose ``ip`` equals it;
    2. 16-32 hex digits, or a UUID -> rows whose ``trace_id`` equals it (case-insensitive);
    3. a dotted lower-case key (``[a-z0-9_-]+`` words joined by dots, at least one dot) ->
       rows whose ``event_key`` starts with it;
    4. anything else -> rows where it occurs, case-insensitively, in the event key, log
       text, user agent, trace id, IP, actor email, actor id or actor display."""
    text = term.strip()
    try:
        return Search("ip", normalize_ip(text))
    except ValueError:
        pass
    if _HEX_TRACE.fullmatch(text) or _UUID.fullmatch(text):
        return Search("trace_id", text.lower())
    if _DOTTED_KEY.fullmatch(text):
        return Search("event_key_prefix", text)
    return Search("text", text)


# -- the tree -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Match:
    """``field:value``, the value as the store holds it (normalized). ``prefix``: the
    event key starts with it (``type:oidc.*``); ``network``: ``value`` is a CIDR."""

    field: str
    value: str
    prefix: bool = False
    network: bool = False


@dataclass(frozen=True, slots=True)
class Attribute:
    """``attributes.<path>:value``."""

    path: tuple[str, ...]
    value: str


@dataclass(frozen=True, slots=True)
class Moment:
    """``time``: ``start`` <= occurred_at < ``end`` (either may be open)."""

    start: datetime | None
    end: datetime | None


@dataclass(frozen=True, slots=True)
class Bare:
    """A bare word or quoted text: today's search rules."""

    search: Search


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


Node = Match | Attribute | Moment | Bare | Not | And | Or


def parse(q: str, tz: str = "UTC") -> Node:
    """The tree of ``q`` (dates in the time zone ``tz``). Raises ``QueryError``."""
    if len(q) > MAX_LENGTH:
        raise QueryError(MAX_LENGTH, f"at most {MAX_LENGTH} characters", "more")
    return _Parser(q, ZoneInfo(tz)).query()


class _Parser:
    def __init__(self, text: str, zone: ZoneInfo) -> None:
        self.text = text
        self.at = 0
        self.zone = zone
        self.depth = 0
        self.terms = 0

    # -- structure ------------------------------------------------------------------------
    def query(self) -> Node:
        self._space()
        if self.at == len(self.text):
            raise self._error("a term")
        node = self._or()
        self._space()
        if self.at < len(self.text):
            if self.text[self.at] == ")":
                raise self._error("a term or an operator (this ')' closes nothing)")
            raise self._error("an operator or the end")
        return node

    def _or(self) -> Node:
        items = [self._and()]
        while self._keyword("OR"):
            items.append(self._and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def _and(self) -> Node:
        items = [self._unary()]
        while True:
            self._space()
            if self.at == len(self.text) or self.text[self.at] == ")" or self._sees("OR"):
                break
            self._keyword("AND")
            items.append(self._unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def _unary(self) -> Node:
        self._space()
        at = self.at
        if self._keyword("NOT"):
            return Not(self._nested(self._unary, at))
        if self._peek() == "-" and self._peek(1) not in ("", ")", " ", "\t", "\r", "\n"):
            self.at += 1
            return Not(self._nested(self._unary, at))
        if self._peek() == "(":
            opened = self.at
            self.at += 1
            node = self._nested(self._or, opened)
            self._space()
            if self._peek() != ")":
                raise self._error(f"')' to close the '(' at position {opened}")
            self.at += 1
            return node
        return self._term()

    def _nested(self, parse: Callable[[], Node], at: int) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(at, f"at most {MAX_DEPTH} levels of nesting", "a deeper one")
        try:
            return parse()
        finally:
            self.depth -= 1

    # -- terms ----------------------------------------------------------------------------
    def _term(self) -> Node:
        self._space()
        start = self.at
        if (
            self.at == len(self.text)
            or self._peek() == ")"
            or any(self._sees(k) for k in _KEYWORDS)
        ):
            raise self._error("a term")
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise self._error(f"at most {MAX_TERMS} terms")
        if self._peek() == '"':
            text = self._quoted()
            if not text.strip():
                raise QueryError(start, "text inside the quotes", '""')
            return Bare(Search("text", text.strip()))
        field = _FIELD.match(self.text, self.at)
        if field is not None and (field[1] in FIELDS or field[1].startswith(ATTRIBUTES)):
            self.at = field.end()
            return self._value(field[1], start)
        word = self._word()
        name, colon, _ = word.partition(":")
        if colon and _NAME_LIKE.fullmatch(name) and not _is_address(word):
            raise QueryError(
                start,
                f"a field ({', '.join(FIELDS)} or attributes.<path>) or a search term "
                '(quote text that has a colon: "…")',
                repr(f"{name}:"),
            )
        return Bare(classify(word))

    def _value(self, field: str, start: int) -> Node:
        value_at = self.at
        if field == "time":
            return self._time(value_at)
        if self._peek() == '"':
            value = self._quoted()
        elif self._peek() in ("", *_ENDS_WORD):
            raise self._error(f"a value after '{field}:'")
        else:
            value = self._word()
        if not value.strip() or len(value) > 256:
            raise QueryError(value_at, f"a value of 1-256 characters after '{field}:'", "none")
        value = value.strip()
        if field.startswith(ATTRIBUTES):
            return Attribute(tuple(field.removeprefix(ATTRIBUTES).split(".")), value)
        return self._match(field, value, value_at)

    def _match(self, field: str, value: str, at: int) -> Match:
        if field == "ip":
            if "/" in value:
                try:
                    network = ipaddress.ip_network(value, strict=False)
                except ValueError:
                    raise QueryError(at, "an IP address or a CIDR network", repr(value)) from None
                return Match("ip", str(network), network=True)
            try:
                return Match("ip", normalize_ip(value))
            except ValueError:
                raise QueryError(at, "an IP address or a CIDR network", repr(value)) from None
        if field == "type":
            key = value.lower()
            prefix = key.endswith("*")
            key = key.removesuffix("*")
            if not _EVENT_KEY.fullmatch(key.rstrip(".") if prefix else key):
                raise QueryError(
                    at, "an event key (login.failed) or a prefix of one (oidc.*)", repr(value)
                )
            return Match("type", key, prefix=prefix)
        if field == "outcome":
            if value.lower() not in ("success", "failure"):
                raise QueryError(at, "success or failure", repr(value))
            return Match("outcome", value.lower())
        if field == "trace":
            return Match("trace", value.lower())
        if field == "country":
            return Match("country", value.upper())
        return Match(field, value)

    # -- time -----------------------------------------------------------------------------
    def _time(self, at: int) -> Moment:
        if self._peek() in ("[", "{"):
            inclusive = self._peek() == "["
            self.at += 1
            self._space()
            low = self._moment_word(allow_open=True)
            self._space()
            if not self._keyword("TO"):
                raise self._error("TO between the two ends of the range")
            self._space()
            high = self._moment_word(allow_open=True, closing="]" if inclusive else "}")
            self._space()
            closing = "]" if inclusive else "}"
            if self._peek() != closing:
                raise self._error(f"'{closing}' to close the range")
            self.at += 1
            start = None if low is None else self._bound(low, "start", inclusive)
            end = None if high is None else self._bound(high, "end", inclusive)
            if start is not None and end is not None and start >= end:
                raise QueryError(at, "a range whose start is before its end", "an empty range")
            return Moment(start, end)
        for operator in (">=", "<=", ">", "<"):
            if self.text.startswith(operator, self.at):
                self.at += len(operator)
                moment = self._moment_word(allow_open=False)
                assert moment is not None
                inclusive = operator.endswith("=")
                if operator.startswith(">"):
                    return Moment(self._bound(moment, "start", inclusive), None)
                return Moment(None, self._bound(moment, "end", inclusive))
        moment = self._moment_word(allow_open=False)
        assert moment is not None
        if isinstance(moment, datetime):
            raise QueryError(
                at, "a date, a comparison (time:>=…) or a range (time:[… TO …])", "a date-time"
            )
        return Moment(self._bound(moment, "start", True), self._bound(moment, "end", True))

    def _moment_word(self, allow_open: bool, closing: str = "") -> date | datetime | None:
        at = self.at
        end = at
        while end < len(self.text) and self.text[end] not in (*_ENDS_WORD, closing or " "):
            end += 1
        word = self.text[at:end]
        if allow_open and word == "*":
            self.at = end
            return None
        try:
            if _DATE.fullmatch(word):
                self.at = end
                return date.fromisoformat(word)
            moment = datetime.fromisoformat(word.replace("z", "Z"))
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None or not 1970 <= moment.year <= 2299:
            raise QueryError(
                at,
                "a date (2026-11-01) or a date-time with its offset (2026-11-01T12:00:00Z)"
                + (" or *" if allow_open else ""),
                repr(word) if word else "nothing",
            )
        self.at = end
        return moment.astimezone(UTC)

    def _bound(
        self, moment: date | datetime, side: Literal["start", "end"], inclusive: bool
    ) -> datetime:
        """The instant a bound stands for: a date is its whole day in the time zone."""
        if isinstance(moment, datetime):
            if inclusive == (side == "start"):
                return moment
            return moment + timedelta(milliseconds=1)  # DateTime64(3): the next instant
        day = moment if inclusive == (side == "start") else moment + timedelta(days=1)
        return datetime.combine(day, time(), self.zone).astimezone(UTC)

    # -- characters -----------------------------------------------------------------------
    def _peek(self, ahead: int = 0) -> str:
        at = self.at + ahead
        return self.text[at] if at < len(self.text) else ""

    def _space(self) -> None:
        while self.at < len(self.text) and self.text[self.at].isspace():
            self.at += 1

    def _sees(self, keyword: str) -> bool:
        end = self.at + len(keyword)
        return self.text.startswith(keyword, self.at) and (
            end == len(self.text) or self.text[end] in (*_ENDS_WORD, '"', "-")
        )

    def _keyword(self, keyword: str) -> bool:
        self._space()
        if self._sees(keyword):
            self.at += len(keyword)
            return True
        return False

    def _word(self) -> str:
        start = self.at
        while self.at < len(self.text) and self.text[self.at] not in (*_ENDS_WORD, '"'):
            self.at += 1
        return self.text[start : self.at]

    def _quoted(self) -> str:
        opened = self.at
        self.at += 1
        out = []
        while self.at < len(self.text):
            char = self.text[self.at]
            if char == "\\" and self.at + 1 < len(self.text):
                out.append(self.text[self.at + 1])
                self.at += 2
            elif char == '"':
                self.at += 1
                return "".join(out)
            else:
                out.append(char)
                self.at += 1
        raise QueryError(opened, "a closing '\"' for this quote", "the end")

    def _error(self, expected: str) -> QueryError:
        found = repr(self.text[self.at : self.at + 12]) if self.at < len(self.text) else "the end"
        return QueryError(self.at, expected, found)


def _is_address(word: str) -> bool:
    try:
        normalize_ip(word)
    except ValueError:
        return False
    return True
