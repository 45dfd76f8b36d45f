"""A destination's PII rules (``schemas.transform``) applied to each event before its
sink encodes it. ``build_sink`` wraps the platform's sink in ``TransformedSink`` when the
destination has rules, so the connector, replay, redrive and the test event all send what
the rules leave, whatever the platform.

Actions:

* ``drop``: the field is left out;
* ``mask``: the value keeps its shape and loses what identifies: ``alice@acme.io`` ->
  ``a***@acme.io``, an IPv4 address -> its /16 (``99.81.0.0/16``), an IPv6 address -> its
  /48, other text -> its first character and ``***``, any other value -> ``***``;
* ``hash``: the hex HMAC-SHA256 of the value under the destination's own key (kept sealed
  with its secrets): one value is one stable pseudonym at this destination, which no
  other destination's pseudonyms reveal, and which cannot be reversed without the key.

``actor_display`` (the email, else the id, else ``anonymous``) follows what the rules do
to the email and the id. ``raw`` (the event as received) repeats every field in clear:
once any rule is set it is dropped unless a rule says ``hash`` for it."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic

import msgspec
import orjson

from connectors.sinks.base import (
    Entry,
    EventHead,
    Limits,
    SendResult,
    Sink,
    StopCheck,
    never,
    read_event,
)
from schemas.events import NormalizedEvent
from schemas.transform import ATTRIBUTES_PREFIX, FIELDS, TransformAction

try:
    from connectors.sinks import _pii as native
except ImportError:  # installed without a Rust toolchain: the Python paths below serve
    native = None  # type: ignore[assignment]

_DISPLAY_SOURCES = ("actor_email", "actor_id")
CACHED_VALUES = 16_384  # per destination: a few MB
# The fast path's results per rule, as JSON, in each of two generations (``_Misses``):
# the recurring users and addresses; about 3 MB a generation.
CACHED_PER_RULE = 16_384
_MASK = "***"


class PiiTransform:
    """The rules of one destination, ready to apply. ``apply`` is thread-safe."""

    def __init__(self, rules: Mapping[str, TransformAction], key: bytes) -> None:
        self._key = key
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)  # copied per value: no re-keying
        # The same users and addresses recur in every batch: each is computed once.
        self._text_pseudonym = functools.lru_cache(maxsize=CACHED_VALUES)(self._pseudonym)
        self._fields: list[tuple[str, TransformAction]] = []
        self._attributes: list[tuple[list[str], TransformAction]] = []
        for field, action in rules.items():
            if field.startswith(ATTRIBUTES_PREFIX):
                path = field.removeprefix(ATTRIBUTES_PREFIX).split(".")
                self._attributes.append((path, action))
            elif field != "raw":
                self._fields.append((FIELDS[field], action))
        self._raw: TransformAction = "hash" if rules.get("raw") == "hash" else "drop"
        self._display = any(name in _DISPLAY_SOURCES for name, _ in self._fields)
        # Rules on top-level fields only (the common case) act on the event's JSON without
        # decoding it: in one native pass (connectors/pii_native) when it is built, else as
        # msgspec reads it (``_Splice``). Attribute paths and a hashed raw need the decoded
        # event.
        top_level = not self._attributes and self._raw == "drop"
        self._native = (
            native.Rules(
                [(name, str(action)) for name, action in self._fields],
                key,
                mask_ip,
                self.apply_decoded,  # for the events the native pass declines
            )
            if top_level and native is not None
            else None
        )
        self._splice = _Splice(self._fields, self) if top_level and not self._native else None
        self._last: tuple[bytes, Any] = (b"", None)

    def reader(self) -> Callable[[bytes], EventHead]:
        """``read``, or ``read_event`` itself where ``read`` would only call it (one call
        less per event)."""
        return self.read if self._splice is not None else read_event

    def applier(self) -> Callable[[bytes], bytes]:
        """``apply``, or the native pass's own (one call less per event)."""
        return self._native.apply if self._native is not None else self.apply

    def read(self, raw: bytes) -> EventHead:
        """The head of the normalized event ``raw`` (as ``read_event``, which validates it).
        On the Python path it is decoded together with what the rules act on, so the
        ``apply`` of the same ``raw`` that follows does not decode it again (one event at a
        time: call from one thread). Raises ``ValueError`` as ``read_event``."""
        if self._splice is not None:
            decoded = self._splice.decode(raw)
            if decoded is not None:
                self._last = (raw, decoded)
                return self._splice.head(decoded)
        return read_event(raw)

    def apply(self, raw: bytes) -> bytes:
        """The normalized event ``raw`` (JSON) with the rules applied: an event ``read``
        accepted (the native path relies on that validation). A value that is not a JSON
        object is returned as it is (the caller refuses it already)."""
        if self._native is not None:
            return self._native.apply(raw)
        if self._splice is not None:
            last_raw, last = self._last
            self._last = (b"", None)
            decoded = last if last_raw is raw else self._splice.decode(raw)
            if decoded is not None:
                return self._splice.apply(decoded)
        return self.apply_decoded(raw)

    def apply_decoded(self, raw: bytes) -> bytes:
        """``apply`` by decoding the whole event and encoding it again: the rule's
        definition (the splice must give the same event)."""
        event = orjson.loads(raw)
        if not isinstance(event, dict):
            return raw
        for name, action in self._fields:
            self._act(event, name, action, mask_of(name))
        if self._display:
            event["actor_display"] = (
                event.get("actor_email") or event.get("actor_id") or "anonymous"
            )
        attributes = event.get("attributes")
        if isinstance(attributes, dict):
            for path, action in self._attributes:
                holder: Any = attributes
                for step in path[:-1]:
                    holder = holder.get(step)
                    if not isinstance(holder, dict):
                        break
                else:
                    self._act(holder, path[-1], action, mask_text)
        self._act(event, "raw", self._raw, mask_text)
        return orjson.dumps(event)

    def value_after(self, action: TransformAction, name: str, value: Any) -> Any:
        """What ``action`` makes of a present value (``drop`` aside)."""
        if value in ("", None):
            return value
        if action == "mask":
            return mask_of(name)(value)
        return self.pseudonym(value)

    def _act(self, holder: dict[str, Any], name: str, action: TransformAction, mask: Any) -> None:
        if name not in holder:
            return
        value = holder[name]
        if action == "drop":
            del holder[name]
        elif value in ("", None):
            return  # nothing to hide; an empty value stays empty
        elif action == "mask":
            holder[name] = mask(value)
        else:
            holder[name] = self.pseudonym(value)

    def pseudonym(self, value: Any) -> str:
        """The hash action's value: hex HMAC-SHA256 under the destination's key."""
        if isinstance(value, str):
            return self._text_pseudonym(value)
        return self._pseudonym(orjson.dumps(value))

    def _pseudonym(self, value: str | bytes) -> str:
        mac = self._keyed.copy()
        mac.update(value.encode() if isinstance(value, str) else value)
        return mac.hexdigest()


class _Splice:
    """The rules applied without decoding the whole event into Python objects: msgspec
    reads the targeted fields as text and every other field as raw JSON (one pass, in C);
    the targeted ones are replaced or left out and the rest is written back as it was
    read. Each distinct value's result is cached as JSON, so the users and addresses that
    recur cost a lookup. Together a fraction of decoding the event and encoding it again,
    which is most of a connector's per-event work.

    Only for events of the normalized event's own fields whose targeted fields are text
    (as the pipeline writes them); for anything else msgspec refuses the event and
    ``decode`` returns None, so the caller decodes it. A repeated key counts as JSON
    decoders take it (the last), as ``apply_decoded`` does.

    ``decode(raw)`` -> the event read so (or None); ``head(event)`` -> its ``EventHead``;
    ``apply(event)`` -> the event with the rules applied, as JSON (``event`` is spent)."""

    def __init__(self, rules: list[tuple[str, TransformAction]], transform: PiiTransform) -> None:
        self._transform = transform
        targeted = {name for name, _ in rules}
        self._display = bool(targeted & set(_DISPLAY_SOURCES))
        if self._display:
            targeted |= set(_DISPLAY_SOURCES)  # read as text too: the display follows them
        # The head's text fields are read as text as well (``head``); occurred_at stays
        # raw JSON (decoding it as a date would write it back in another form).
        typed = targeted | set(_HEAD_TEXT)
        fields = [
            (name, str if name in typed else msgspec.Raw, msgspec.UNSET)
            for name in NormalizedEvent.__struct_fields__
        ]
        event = msgspec.defstruct("SplicedEvent", fields, forbid_unknown_fields=True)
        self._decode = msgspec.json.Decoder(event).decode
        self._encode = msgspec.json.Encoder().encode
        self.apply = self._compile(rules)

    def _compile(self, rules: list[tuple[str, TransformAction]]) -> Callable[[Any], bytes]:
        """``apply`` written out for these rules: a function with each field's steps in line
        (no lookups by name per event: a third of the loop's cost). The names are the
        event's own field names (``FIELDS``), never user input."""
        lines = ["def apply(event):"]
        scope: dict[str, Any] = {"UNSET": msgspec.UNSET, "encode": self._encode}
        for i, (name, action) in enumerate(rules):
            if not name.isidentifier() or name not in NormalizedEvent.__struct_fields__:
                raise ValueError(f"not a field of the normalized event: {name!r}")
            if action == "drop":
                lines.append(f"    event.{name} = UNSET")
                continue
            # Absent (UNSET) and empty values are false: nothing to hide.
            scope[f"done{i}"] = {}
            scope[f"miss{i}"] = _Misses(
                scope, f"done{i}", functools.partial(self._after, action, name)
            )
            lines += [
                f"    value = event.{name}",
                "    if value:",
                f"        event.{name} = done{i}.get(value) or miss{i}(value)",
            ]
        if self._display:
            # What the rules left of the email, else of the id (absent and empty are false,
            # a replaced value's JSON is true), as decoding would.
            lines.append(
                '    event.actor_display = event.actor_email or event.actor_id or "anonymous"'
            )
        lines += ["    event.raw = UNSET", "    return encode(event)"]
        exec("\n".join(lines), scope)  # noqa: S102 (field names checked above)
        function: Callable[[Any], bytes] = scope["apply"]
        return function

    def _after(self, action: TransformAction, name: str, value: str) -> Any:
        return msgspec.Raw(orjson.dumps(self._transform.value_after(action, name, value)))

    def decode(self, raw: bytes) -> Any:
        """The event as this splice reads it, or None when it cannot (see the class)."""
        try:
            return self._decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None

    def head(self, event: Any) -> EventHead:
        """The ``EventHead`` of a decoded event. Raises ``ValueError`` for an
        ``occurred_at`` that is not a time (as ``read_event`` would)."""
        occurred = event.occurred_at
        # Absent text is "" (UNSET is false).
        return EventHead(
            event_key=event.event_key or "",
            outcome=event.outcome or "",
            account_id=event.account_id or "",
            description=event.description or "",
            occurred_at=None if occurred is msgspec.UNSET else _read_moment(occurred),
        )


class _Misses:
    """What a rule's cache lookup falls back to: the previous generation of results,
    else computing one. The current generation (a dict the applying function reads by
    name in ``scope``) holds at most ``CACHED_PER_RULE``; when full it becomes the previous
    one and a new one starts, so the values in use stay cached (as in an LRU) while a
    scan of one-off values evicts only what was not used for a generation."""

    def __init__(self, scope: dict[str, Any], name: str, compute: Callable[[str], Any]) -> None:
        self._scope = scope
        self._name = name
        self._compute = compute
        self._previous: dict[str, Any] = {}

    def __call__(self, value: str) -> Any:
        after = self._previous.get(value)
        if after is None:
            after = self._compute(value)
        current: dict[str, Any] = self._scope[self._name]
        if len(current) >= CACHED_PER_RULE:
            self._previous = current
            current = self._scope[self._name] = {}
        current[value] = after
        return after


# EventHead's text fields, read as text by the splice (its other one is occurred_at).
_HEAD_TEXT = ("event_key", "outcome", "account_id", "description")
_moment = msgspec.json.Decoder(datetime | None).decode


def _read_moment(raw: Any) -> datetime | None:
    try:
        return _moment(raw)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a normalized event: occurred_at: {exc}") from exc


def mask_text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        return _MASK
    return value[0] + _MASK


def mask_email(value: Any) -> str:
    if not isinstance(value, str) or "@" not in value:
        return mask_text(value)
    local, _, domain = value.rpartition("@")
    return f"{local[:1]}{_MASK}@{domain}"


@functools.lru_cache(maxsize=CACHED_VALUES)
def mask_ip(value: Any) -> str:
    if isinstance(value, str):
        parts = value.split(".")
        # Dotted IPv4, the common case: the ipaddress module costs ten times more.
        # isascii: str.isdigit takes other scripts' digits (and "²", which int() refuses).
        if len(parts) == 4 and all(
            p.isascii() and p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts
        ):
            return f"{int(parts[0])}.{int(parts[1])}.0.0/16"
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        return _MASK
    prefix = 16 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def mask_of(name: str) -> Any:
    return {"actor_email": mask_email, "ip": mask_ip}.get(name, mask_text)


class TransformedSink(Generic[Entry]):
    """``sink`` with ``transform`` applied to each event before it encodes it; every
    other call goes to ``sink`` as it is."""

    def __init__(self, sink: Sink[Entry], transform: PiiTransform) -> None:
        self.sink = sink
        self.transform = transform
        self.platform = sink.platform
        self.limits: Limits = sink.limits
        self._apply = transform.applier()

    def encode(self, head: EventHead, raw: bytes) -> Entry:
        return self.sink.encode(head, self._apply(raw))

    def size(self, entry: Entry) -> int:
        return self.sink.size(entry)

    def send(self, entries: Sequence[Entry], should_stop: StopCheck = never) -> SendResult:
        return self.sink.send(entries, should_stop)

    def healthcheck(self) -> SendResult:
        return self.sink.healthcheck()

    def close(self) -> None:
        self.sink.close()
