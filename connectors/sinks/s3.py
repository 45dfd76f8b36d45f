"""Amazon S3 archive — PutObject.

An archive is written in files, not requests: the connector (``connectors.runtime.archive``)
gathers what it reads into open files and closes them at ``max_bytes`` or ``max_seconds``;
this module says what an event becomes (its partition path and its NDJSON line), what a
closed file's key and body are, and puts it.

Layout (Hive-style partitions, read as columns by Athena, Spark and ClickHouse's ``s3()``
with ``use_hive_partitioning``)::

    <prefix>/account=<account id>/date=<YYYY-MM-DD>/hour=<HH>/
        <destination>-<partition>-<first offset>-<last offset>.ndjson.gz

* the account id is percent-encoded (RFC 3986: letters, digits and ``-._~`` stay as they
  are), so a key never needs URL encoding; an event without an account goes under
  ``account=__HIVE_DEFAULT_PARTITION__`` (Hive's, Athena's and Spark's NULL);
* date and hour are those of ``occurred_at`` in UTC;
* the offsets are those of the file's first and last event in the Kafka partition of
  ``auth-events.normalized`` it was read from (offsets count per partition, hence the
  partition in the name): a file re-sent after a crash has the same key and the same
  events, and replaces itself;
* the body is gzip (no name, time 0: the same events give the same bytes) of one
  normalized event a line, as JSON, with the destination's PII rules applied;
* events sent outside the stream (the test event, a dead-letter redrive) are written as
  ``<destination>-direct-<first 16 hex of the body's SHA-256>.ndjson.gz``: re-sending the
  same events replaces the same object.

Replies: 2xx is ``ok``; ``SlowDown``, ``InternalError``, ``ServiceUnavailable``,
``RequestTimeout``, 429, 5xx and transport failures are ``retry``; every other refusal
(``AccessDenied``, ``NoSuchBucket``, ``InvalidAccessKeyId``, ``SignatureDoesNotMatch``, a
KMS key it cannot use, a storage class it does not offer, a wrong region) is ``auth``: a
configuration that every file would hit, so the destination waits (``auth_failed``),
re-checked slowly, and loses nothing."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from connectors.sinks import aws
from connectors.sinks.base import EventHead, Limits, Reply, SendResult, StopCheck, never
from schemas.destinations import Destination
from schemas.platforms import S3Settings

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
RETRY_CODES = frozenset(
    {
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        "Throttling",
        "ThrottlingException",
        "OperationAborted",  # a conflicting operation on the bucket: try again
    }
)
GZIP_LEVEL = 6  # zlib's default: most of level 9's ratio at several times its speed
GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip member, not a zlib stream


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    """An event as the archive keeps it: the partition path it belongs under and its
    line (the event's JSON and a newline)."""

    path: str
    line: bytes


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """A closed file as it is put: its key, its gzip body and how many events it holds."""

    key: str
    body: bytes
    events: int


def partition_path(head: EventHead) -> str:
    """``account=<id>/date=<YYYY-MM-DD>/hour=<HH>`` for an event (see the module
    docstring)."""
    account = quote(head.account_id, safe="") if head.account_id else HIVE_NULL
    moment = head.occurred_utc()
    if moment is None:
        return f"account={account}/date={HIVE_NULL}/hour={HIVE_NULL}"
    return f"account={account}/date={moment:%Y-%m-%d}/hour={moment:%H}"


class S3Sink:
    """The archive's encoder and service (see the module docstring). ``send`` is the
    ``Sink`` shape for events sent outside the stream; the connector puts files it closed
    with ``file`` and ``put``."""

    platform = "s3"

    def __init__(self, destination: Destination) -> None:
        settings = destination.settings
        if not isinstance(settings, S3Settings):
            raise TypeError(f"s3 sink built for a {destination.platform} destination")
        self._settings = settings
        self._destination = destination.id
        self.max_file_bytes = settings.max_bytes
        self.max_file_seconds = float(settings.max_seconds)
        # ``send`` (test event, redrive) writes one object per partition path: at most
        # a file's bytes, each event at most that.
        self.limits = Limits(
            max_entries=100_000,
            max_bytes=settings.max_bytes,
            max_entry_bytes=settings.max_bytes,
            gzip=False,
            separator_bytes=0,
            framing_bytes=0,
        )
        extra: dict[str, Any] = {}
        if settings.endpoint is not None:
            # MinIO and moto serve buckets by path, not as host names.
            extra["s3"] = {"addressing_style": "path"}
        self._client: Any = aws.make_client("s3", settings, **extra)
        self._put_options: dict[str, str] = {"StorageClass": settings.storage_class}
        if settings.sse is not None:
            self._put_options["ServerSideEncryption"] = settings.sse
        if settings.kms_key_id is not None:
            self._put_options["SSEKMSKeyId"] = settings.kms_key_id

    def encode(self, head: EventHead, raw: bytes) -> ArchiveRecord:
        return ArchiveRecord(partition_path(head), raw + b"\n")

    def size(self, entry: ArchiveRecord) -> int:
        return len(entry.line)

    def file(self, path: str, name: str, lines: Sequence[bytes]) -> ArchiveFile:
        """The closed file ``<prefix>/<path>/<destination>-<name>.ndjson.gz`` of
        ``lines``."""
        # Line by line: joining first would hold a second copy of a file of up to
        # max_bytes. zlib's gzip header has no name and time 0.
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, GZIP_WBITS)
        chunks = [compressor.compress(line) for line in lines]
        chunks.append(compressor.flush())
        body = b"".join(chunks)
        parts = [self._settings.prefix, path, f"{self._destination}-{name}.ndjson.gz"]
        return ArchiveFile("/".join(part for part in parts if part), body, len(lines))

    def put(self, file: ArchiveFile) -> SendResult:
        """Puts one closed file (a second put of the same key replaces it)."""
        try:
            self._client.put_object(
                Bucket=self._settings.bucket,
                Key=file.key,
                Body=file.body,
                ContentType="application/gzip",
                **self._put_options,
            )
        except aws.CALL_ERRORS as exc:
            return classify(exc, self._settings.bucket)
        return SendResult("ok", Reply(200, "", f"{file.events} events in {file.key}"))

    def send(self, entries: Sequence[ArchiveRecord], should_stop: StopCheck = never) -> SendResult:
        paths: dict[str, list[bytes]] = {}
        for record in entries:
            paths.setdefault(record.path, []).append(record.line)
        for path, lines in paths.items():
            digest = hashlib.sha256(b"".join(lines)).hexdigest()[:16]
            result = self.put(self.file(path, f"direct-{digest}", lines))
            if result.kind != "ok":
                return result  # retried whole: the objects already put are put again alike
        return SendResult("ok", Reply(200, "", f"{len(entries)} events archived"))

    def healthcheck(self) -> SendResult:
        try:
            self._client.head_bucket(Bucket=self._settings.bucket)
        except aws.CALL_ERRORS as exc:
            return classify(exc, self._settings.bucket)
        return SendResult("ok", Reply(200, "", f"bucket {self._settings.bucket} is writable"))

    def close(self) -> None:
        self._client.close()


def classify(exc: Exception, bucket: str) -> SendResult:
    """A failed S3 call (see the module docstring)."""
    reply = aws.client_error(exc)
    if reply is None:
        return aws.classify_transport(exc, "S3")
    status, code = reply.status, reply.code
    if code in RETRY_CODES or status == 429 or (status is not None and status >= 500):
        return SendResult("retry", reply)
    # HeadBucket answers without a body: only the status says what is wrong.
    if code in ("404", "NoSuchBucket"):
        return SendResult(
            "auth",
            Reply(
                status,
                "NoSuchBucket",
                f"bucket {bucket} does not exist; create it or fix "
                "the destination's bucket: nothing is archived until then",
            ),
        )
    if code in ("403", "AccessDenied"):
        return SendResult(
            "auth",
            Reply(
                status,
                "AccessDenied",
                f"access to bucket {bucket} denied ({reply.message}); "
                "the credentials need s3:PutObject on it",
            ),
        )
    if code in ("301", "PermanentRedirect", "AuthorizationHeaderMalformed"):
        return SendResult(
            "auth",
            Reply(
                status,
                code,
                f"bucket {bucket} is in another region than the destination's ({reply.message})",
            ),
        )
    return SendResult("auth", reply)


# The sink of the platform registered as "s3" (connectors.sinks.build_sink).
SINK = S3Sink
