"""The ingest peer: what a ClickHouse user would run instead of authtrail's pipeline, on
the same topic and the same events, timed from the first row stored to the last.

    python -m bench.ingest_peer --bootstrap HOST:PORT --topic T --events N --data DIR

ClickHouse's answer is a Kafka table engine and a materialized view that extracts the
columns into a MergeTree table. chDB 4.4 (ClickHouse 26.9) refuses ``ENGINE = Kafka`` with
"Shutdown was called (LOGICAL_ERROR)": the embedded build does not run the message-broker
schedule pool. So what runs here is a librdkafka loop feeding the materialized view:
librdkafka (the library the Kafka engine embeds) reads the topic, and each fetch is
inserted (``RowBinary``: the record's broker timestamp and its value) into a ``Null``
table carrying the view. The engine is still tried first, and the JSON line printed
names which of the two ran (``peer``).

The view does the contract's work in SQL, so the peer pays what authtrail pays:
* its target is a table made by authtrail's own DDL (``schemas.log_store``: every column
  of the events table, the same engine, order, indexes and settings);
* the alias mapping of ``pipeline.aliases`` (``occurred_at|timestamp|ts``,
  ``ip|ip_address|client_ip``, ``user_agent|userAgent``, ``trace_id|traceId``, flat
  ``account_id``/``account_name`` and ``user_id``/``user_email``, ``account`` and
  ``actor`` as strings; the v1 field wins unless null), each field's JSON type checked;
* every field validated as ``schemas.events`` does: ids and trace ids by their pattern
  and length, a UUID event id in its canonical form, the event key and trace id
  lower-cased, e-mails by their pattern (kept as sent, as authtrail keeps them), the time
  as RFC 3339 with an offset or epoch s/ms/µs/ns, and not before 2000 nor more than 24 h
  after the broker timestamp, the IP parsed (IPv4, IPv6 compressed, IPv4-mapped IPv6 as
  IPv4, ``[v6]`` brackets), lengths, the outcome one of two, the actor type one of four;
* what authtrail derives: the description and the implied outcome from the catalogue
  (``schemas.catalogue``, the same fallback rules for unknown keys), the actor type
  (``user`` with an id or e-mail, else ``anonymous``) and display, ``received_at`` from
  the record's broker timestamp.

What it cannot do in SQL, and leaves empty: the user-agent parsing (browser, OS, device)
and the geo lookup (country). And where authtrail differs: an event that fails
validation (no event id, an unparsable or out-of-range time, any field refused) is
filtered out by the view's ``WHERE`` and dropped silently, where authtrail dead-letters
it with a reason; an event without an ``event_id`` is dropped too, where authtrail derives
one from its content (uuid5, not available in SQL). The peer does not skip ids already
stored (authtrail's writer does; both tables are ``ReplacingMergeTree``).
"""

from __future__ import annotations

import argparse
import json
import struct
import time
import uuid
from typing import Any

import clickhouse_connect
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer

from schemas.catalogue import _FAILURE_WORDS, CATALOGUE
from schemas.log_store import EVENT_COLUMNS, StoreLocation, ddl, sql_string

DATABASE = "peer"
EVENTS = f"{DATABASE}.auth_events"
MAX_EVENT_BYTES = 262_144  # the normalizer's default limit
RETENTION_DAYS = 90
# schemas.events' patterns, as SQL string literals.
ID_PATTERN = sql_string(r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]*$")
KEY_PATTERN = sql_string(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$")
EMAIL_PATTERN = sql_string(r"^[^@\s]+@[^@\s]+$")
NUMBER_PATTERN = sql_string(r"^-?\d+(\.\d+)?$")  # a time as a string of epoch digits
OFFSET_PATTERN = sql_string(r"(?i)(z|[+-]\d\d:?\d\d)$")  # RFC 3339's UTC offset
SPACE = r"' \t\n\r\x0B\x0C'"  # what strip() strips, of the ASCII range


def _array(values: Any) -> str:
    return "[" + ", ".join(sql_string(v) for v in values) + "]"


def _given(j: str) -> str:
    """A field's raw JSON text is present and not null."""
    return f"({j} NOT IN ('', 'null'))"


def _string_or_absent(j: str) -> str:
    """The field is absent, null or a JSON string (other types are refused)."""
    return f"({j} IN ('', 'null') OR startsWith({j}, '\"'))"


def _text(j: str) -> str:
    """A JSON string's value, stripped ('' when absent or null)."""
    return f"trimBoth(JSONExtractString({j}), {SPACE})"


def _non_empty(j: str, value: str, max_length: int) -> str:
    """pydantic's ``NonEmpty`` with a length: absent/null, or a string 1..max_length."""
    return (
        f"({j} IN ('', 'null') OR (startsWith({j}, '\"') "
        f"AND lengthUTF8({value}) BETWEEN 1 AND {max_length}))"
    )


def _first(*keys: str) -> str:
    """The alias rule: the first of the spellings that is present and not null."""
    fields = ", ".join(f"m['{key}']" for key in keys)
    return f"arrayFirst(v -> v NOT IN ('', 'null'), [{fields}])"


KEYS = _array(CATALOGUE)
DESCRIPTIONS = _array(e.description for e in CATALOGUE.values())
OUTCOMES = _array(e.outcome for e in CATALOGUE.values())
FAILURE_WORDS = _array(sorted(_FAILURE_WORDS))

# The innermost query reads the record once into a map of its top-level fields (raw
# JSON texts) and applies the alias mapping; the middle one decodes, derives and, in its
# WHERE, validates; the outer one gives the events table's columns in their order.
# {source}: the table the records arrive in; {received}: their broker timestamp there.
VIEW = f"""
CREATE MATERIALIZED VIEW {DATABASE}.mv TO {EVENTS} AS
SELECT {", ".join(EVENT_COLUMNS)}
FROM (
SELECT
    raw,
    received_at,
    -- event id: a UUID in its canonical form, else an id of the contract's characters
    {_text("j_id")} AS id_text,
    toUUIDOrNull(if(startsWith(id_text, '{{') AND endsWith(id_text, '}}'),
                    substring(id_text, 2, length(id_text) - 2), id_text)) AS id_uuid,
    if(id_uuid IS NULL, id_text, toString(id_uuid)) AS event_id,
    lower({_text("j_key")}) AS event_key,
    transform(event_key, {KEYS}, {DESCRIPTIONS},
        concat(upper(substring(trimBoth(replaceRegexpAll(event_key, '[._-]+', ' ')), 1, 1)),
               substring(trimBoth(replaceRegexpAll(event_key, '[._-]+', ' ')), 2))
    ) AS description,
    if({_given("j_outcome")}, JSONExtractString(j_outcome),
       transform(event_key, {KEYS}, {OUTCOMES},
           if(splitByChar('_', splitByChar('.', event_key)[-1])[-1] IN {FAILURE_WORDS},
              'failure', 'success'))) AS outcome,
    -- time: epoch s/ms/µs/ns (a number, or a string of one) or RFC 3339 with an offset
    if(startsWith(j_time, '"'), {_text("j_time")}, j_time) AS time_text,
    match(time_text, {NUMBER_PATTERN})
        OR (NOT startsWith(j_time, '"') AND j_time NOT IN ('true', 'false')) AS time_is_number,
    toFloat64OrNull(time_text) AS time_number,
    multiIf(abs(time_number) >= 1e17, time_number / 1e6,
            abs(time_number) >= 1e14, time_number / 1e3,
            abs(time_number) >= 1e11, time_number,
            time_number * 1e3) AS time_ms,
    if(time_is_number,
       if(isFinite(time_ms) AND abs(time_ms) < 1e15,
          fromUnixTimestamp64Milli(toInt64(floor(round(time_ms, 3))), 'UTC'), NULL),
       if(match(time_text, {OFFSET_PATTERN}),
          parseDateTime64BestEffortOrNull(time_text, 3, 'UTC'), NULL)) AS occurred,
    ifNull(occurred, toDateTime64(0, 3, 'UTC')) AS occurred_at,
    {_text("j_account_id")} AS account_id,
    {_text("j_account_name")} AS account_name,
    {_text("j_actor_id")} AS actor_id,
    {_text("j_actor_email")} AS actor_email,
    JSONExtractString(j_actor_type) AS given_actor_type,
    if({_given("j_actor_type")}, given_actor_type,
       if(actor_id != '' OR actor_email != '', 'user', 'anonymous')) AS actor_type,
    multiIf(actor_email != '', actor_email, actor_id != '', actor_id, 'anonymous')
        AS actor_display,
    -- IP: [v6] brackets dropped, IPv4 or IPv6 parsed, IPv4-mapped IPv6 as IPv4
    {_text("j_ip")} AS ip_sent,
    if(startsWith(ip_sent, '[') AND endsWith(ip_sent, ']'),
       substring(ip_sent, 2, length(ip_sent) - 2), ip_sent) AS ip_text,
    IPv6NumToString(toIPv6OrNull(ip_text)) AS ip_v6,
    multiIf(ip_text = '', '',
            isIPv4String(ip_text), IPv4NumToString(toIPv4(ip_text)),
            ip_v6 IS NULL, NULL,
            startsWith(ip_v6, '::ffff:') AND isIPv4String(substring(ip_v6, 8)),
            substring(ip_v6, 8), ip_v6) AS ip_parsed,
    ifNull(ip_parsed, '') AS ip,
    '' AS country,  -- the geo lookup: not in SQL
    JSONExtractString(j_ua) AS user_agent,
    '' AS ua_browser,  -- the user-agent parsing: not in SQL
    '' AS ua_os,
    '' AS ua_device,
    lower({_text("j_trace")}) AS trace_id,
    JSONExtractString(j_reason) AS reason,
    if(startsWith(j_attributes, '{{'), j_attributes, '{{}}') AS attributes,
    1 AS schema_version
FROM (
        SELECT
            raw,
            {{received}} AS received_at,
            CAST(JSONExtractKeysAndValuesRaw(raw), 'Map(String, String)') AS m,
            m['event_id'] AS j_id,
            m['event_key'] AS j_key,
            m['outcome'] AS j_outcome,
            m['reason'] AS j_reason,
            m['attributes'] AS j_attributes,
            {_first("occurred_at", "timestamp", "ts")} AS j_time,
            {_first("ip", "ip_address", "client_ip")} AS j_ip,
            {_first("user_agent", "userAgent")} AS j_ua,
            {_first("trace_id", "traceId")} AS j_trace,
            -- account: an object, a string (its id), or the flat account_id/account_name
            m['account'] AS j_account,
            multiIf(
                {_given("j_account")} AND startsWith(j_account, '{{'), 'object',
                {_given("j_account")} AND startsWith(j_account, '"'), 'string',
                {_given("j_account")}, 'refused',
                {_given("m['account_id']")} OR {_given("m['account_name']")}, 'flat',
                'none') AS account_shape,
            multiIf(account_shape = 'object', JSONExtractRaw(j_account, 'id'),
                    account_shape = 'string', j_account,
                    account_shape = 'flat', m['account_id'], '') AS j_account_id,
            multiIf(account_shape = 'object', JSONExtractRaw(j_account, 'name'),
                    account_shape = 'flat', m['account_name'], '') AS j_account_name,
            -- actor: an object, a string (an e-mail with '@', else an id), or the flat
            -- user_id/user_email
            m['actor'] AS j_actor,
            multiIf(
                {_given("j_actor")} AND startsWith(j_actor, '{{'), 'object',
                {_given("j_actor")} AND startsWith(j_actor, '"'), 'string',
                {_given("j_actor")}, 'refused',
                {_given("m['user_id']")} OR {_given("m['user_email']")}, 'flat',
                'none') AS actor_shape,
            position(JSONExtractString(j_actor), '@') > 0 AS actor_string_is_email,
            multiIf(actor_shape = 'object', JSONExtractRaw(j_actor, 'id'),
                    actor_shape = 'string', if(actor_string_is_email, '', j_actor),
                    actor_shape = 'flat', m['user_id'], '') AS j_actor_id,
            multiIf(actor_shape = 'object', JSONExtractRaw(j_actor, 'email'),
                    actor_shape = 'string', if(actor_string_is_email, j_actor, ''),
                    actor_shape = 'flat', m['user_email'], '') AS j_actor_email,
            if(actor_shape = 'object', JSONExtractRaw(j_actor, 'type'), '') AS j_actor_type
        FROM {{source}}
    )
WHERE length(raw) <= {MAX_EVENT_BYTES}
    AND startsWith(j_id, '"') AND lengthUTF8(id_text) BETWEEN 1 AND 128
    AND (id_uuid IS NOT NULL OR match(id_text, {ID_PATTERN}))
    AND startsWith(j_key, '"') AND lengthUTF8({_text("j_key")}) BETWEEN 1 AND 128
    AND match(event_key, {KEY_PATTERN})
    AND (NOT {_given("j_outcome")} OR outcome IN ('success', 'failure'))
    AND occurred IS NOT NULL AND occurred >= toDateTime64('2000-01-01 00:00:00', 3, 'UTC')
    AND occurred <= received_at + INTERVAL 24 HOUR
    AND account_shape != 'refused'
    AND (account_shape = 'none'
         OR (startsWith(j_account_id, '"') AND lengthUTF8(account_id) BETWEEN 1 AND 256))
    AND {_string_or_absent("j_account_name")} AND lengthUTF8(account_name) <= 512
    AND (account_shape != 'object'
         OR arrayAll(k -> k IN ('id', 'name'), JSONExtractKeys(j_account)))
    AND actor_shape != 'refused'
    AND {_non_empty("j_actor_id", "actor_id", 256)}
    AND {_non_empty("j_actor_email", "actor_email", 320)}
    AND (actor_email = '' OR match(actor_email, {EMAIL_PATTERN}))
    AND (NOT {_given("j_actor_type")}
         OR given_actor_type IN ('user', 'agent', 'service', 'anonymous'))
    AND (actor_shape != 'object'
         OR arrayAll(k -> k IN ('id', 'email', 'type'), JSONExtractKeys(j_actor)))
    AND {_non_empty("j_ip", "ip_sent", 64)} AND ip_parsed IS NOT NULL
    AND {_string_or_absent("j_ua")} AND lengthUTF8(user_agent) <= 4096
    AND {_non_empty("j_trace", _text("j_trace"), 128)}
    AND (trace_id = '' OR match(trace_id, {ID_PATTERN}))
    AND {_string_or_absent("j_reason")} AND lengthUTF8(reason) <= 2048
    AND (j_attributes IN ('', 'null') OR startsWith(j_attributes, '{{'))
)
"""


def view(source: str, received: str) -> str:
    """The materialized view's statement over ``source``."""
    return VIEW.replace("{source}", source).replace("{received}", received)


def count(client: Any) -> int:
    return int(client.command(f"SELECT count() FROM {EVENTS}"))


def run_kafka_engine(client: Any, bootstrap: str, topic: str, events: int) -> dict[str, Any]:
    client.command(
        f"CREATE TABLE {DATABASE}.kafka (raw String) ENGINE = Kafka SETTINGS "
        f"kafka_broker_list = '{bootstrap}', kafka_topic_list = '{topic}', "
        f"kafka_group_name = 'peer-{uuid.uuid4().hex[:8]}', kafka_format = 'JSONAsString', "
        "kafka_max_block_size = 65536"
    )
    # The record's broker timestamp is the engine's virtual column.
    client.command(view(f"{DATABASE}.kafka", "ifNull(_timestamp_ms, now64(3))"))
    first: tuple[float, int] | None = None
    seen = 0
    deadline = time.monotonic() + 900
    while seen < events and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = count(client)
        if seen and first is None:
            first = (time.time(), seen)
    assert first is not None, "the Kafka engine stored nothing"
    return {"peer": "Kafka table engine + materialized view", "rows": seen, "first": first}


_LENGTH_1 = struct.Struct("<qB")  # the broker timestamp, then the value's varint length
_LENGTH_2 = struct.Struct("<qBB")


def row_binary(timestamp_ms: int, value: bytes) -> bytes:
    """One ``(received_at DateTime64(3), raw String)`` row in ClickHouse's RowBinary."""
    size = len(value)
    if size < 0x80:
        return _LENGTH_1.pack(timestamp_ms, size) + value
    if size < 0x4000:
        return _LENGTH_2.pack(timestamp_ms, size & 0x7F | 0x80, size >> 7) + value
    head = bytearray(struct.pack("<q", timestamp_ms))
    while size >= 0x80:
        head.append(size & 0x7F | 0x80)
        size >>= 7
    head.append(size)
    return bytes(head) + value


def run_consumer_fed(client: Any, bootstrap: str, topic: str, events: int) -> dict[str, Any]:
    client.command(
        f"CREATE TABLE {DATABASE}.queue (received_at DateTime64(3, 'UTC'), raw String) "
        "ENGINE = Null"
    )
    client.command(view(f"{DATABASE}.queue", "received_at"))
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"peer-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.queue.backoff.ms": 10,
        }
    )
    consumer.subscribe([topic])
    first: tuple[float, int] | None = None
    read = 0
    now_ms = int(time.time() * 1000)
    try:
        while read < events:
            messages = consumer.consume(65536, 1.0)
            rows = []
            for message in messages:
                if message.error() is None:
                    kind, stamp = message.timestamp()
                    stamp = now_ms if kind == TIMESTAMP_NOT_AVAILABLE else stamp
                    rows.append(row_binary(stamp, message.value() or b""))
            if not rows:
                continue
            client.raw_insert(f"{DATABASE}.queue", insert_block=b"".join(rows), fmt="RowBinary")
            read += len(rows)
            if first is None:
                first = (time.time(), count(client))
            consumer.commit(asynchronous=True)
    finally:
        consumer.close()
    assert first is not None
    return {
        "peer": "a librdkafka loop feeding the materialized view "
        "(RowBinary: broker timestamp + value; chDB refuses ENGINE = Kafka)",
        "rows": count(client),
        "read": read,
        "first": first,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--data", required=True)
    args = parser.parse_args()
    client = clickhouse_connect.get_client(dsn=f"chdb://{args.data}")
    # authtrail's own DDL: the events table with every column, engine, order and index.
    for statement in ddl(StoreLocation(f"chdb://{args.data}", DATABASE), RETENTION_DAYS):
        client.command(statement)
    try:
        result = run_kafka_engine(client, args.bootstrap, args.topic, args.events)
    except Exception as exc:
        refused = " ".join(str(exc).split())[:200]
        client.command(f"DROP VIEW IF EXISTS {DATABASE}.mv")
        client.command(f"DROP TABLE IF EXISTS {DATABASE}.kafka")
        result = run_consumer_fed(client, args.bootstrap, args.topic, args.events)
        result["kafka_engine_error"] = refused
    done = time.time()
    first_at, first_rows = result.pop("first")
    result["events_per_s"] = (result["rows"] - first_rows) / max(done - first_at, 1e-6)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
