"""The connector of a platform written in files (the S3 archive): a ``DestinationWorker``
whose loop gathers events into open files (``connectors.runtime.archive_files``) instead
of sending each batch, with the same consumer group, status, retries, auth handling and
dead letters.

Contract of ``ArchiveWorker`` — exactly one object per file, whatever crashes:
* a file holds events of one Kafka partition of ``auth-events.normalized`` and one
  partition path (account, date, hour); its key names the offsets of its first and last
  event, so it is determined by the records it covers;
* the files of a partition close together, as a *range* of offsets: at ``max_bytes`` of
  open files or ``max_seconds`` after the oldest was opened;
* before any file of a range is put, the range's last offset is recorded in Kafka, as the
  metadata of a commit of its first offset (the committed position does not move). A
  replica that takes the partition over — after a crash, a rebalance, a restart — reads
  that record and closes its first range exactly there, so a file put before the crash is
  put again with the same key and the same events, replacing itself;
* the range's end is committed only after every file of it is put (and its unreadable
  records dead-lettered), so an event is never skipped: a failed or interrupted put leaves
  the range uncommitted, to be put again;
* S3 refusing the configuration or the credentials makes the destination ``auth_failed``:
  the range waits, re-checked slowly, and is put once S3 takes it;
* a stop drops the open files uncommitted (they are read again, with new boundaries:
  nothing of them was put).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from connectors.runtime.archive_files import OpenFile, OpenFiles, Range
from connectors.runtime.dead_letters import Letter
from connectors.runtime.delivery import AuthFailedError, Delivery
from connectors.runtime.worker import DestinationWorker
from connectors.sinks import event_reader, file_sink
from connectors.sinks.base import (
    FileSink,
    Limits,
    Reply,
    SendResult,
    Sink,
    StopCheck,
    never,
)

log = logging.getLogger(__name__)

# The metadata of the commit that records a range's end before its files are put.
END_MARK = "authtrail.archive.v1 end="
READ_BATCH = 10_000
COMMIT_TIMEOUT_S = 10.0


def end_mark(last: int) -> str:
    return f"{END_MARK}{last}"


def recorded_end(metadata: str | None) -> int | None:
    """The range end a commit's metadata records, if it is one of ours."""
    if metadata and metadata.startswith(END_MARK):
        try:
            return int(metadata[len(END_MARK) :])
        except ValueError:
            return None
    return None


class _Puts:
    """A ``FileSink``'s closed files as ``Delivery`` sends them: one file a request, so a
    put is retried (with backoff, Retry-After and the destination's shared gate) like any
    platform's request."""

    limits = Limits(1, 1 << 62, 1 << 62, gzip=False, separator_bytes=0, framing_bytes=0)

    def __init__(self, files: FileSink) -> None:
        self.files = files
        self.platform = files.platform

    def encode(self, head: Any, raw: bytes) -> Any:
        raise TypeError("closed files are made by the archive, not encoded")

    def size(self, entry: Any) -> int:
        return 0

    def send(self, entries: Any, should_stop: StopCheck = never) -> SendResult:
        (file,) = entries
        return self.files.put(file)

    def healthcheck(self) -> SendResult:
        return self.files.healthcheck()

    def close(self) -> None:
        """The ``FileSink`` is the worker's to close."""


class ArchiveWorker(DestinationWorker):
    """See the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._topic = self._settings.topics.normalized
        self._owned: set[int] = set()
        self._unchecked: set[int] = set()  # assigned; the recorded range end not read yet
        self._files = OpenFiles(1, 1.0)  # replaced once the sink says its limits

    def _consume(self, sink: Sink[Any], producer: Producer, sender: ThreadPoolExecutor) -> None:
        files = file_sink(sink)
        if files is None:
            raise TypeError(f"{sink.platform} is not written in files")
        self._files = OpenFiles(files.max_file_bytes, files.max_file_seconds)
        consumer = self._consumer
        assert consumer is not None
        while not self._stopping.is_set():
            self._show_recovered()
            batch = self._collect(consumer, READ_BATCH)
            self._read_recorded_ends(consumer)
            self._add(batch, sink)
            due = self._files.due(time.monotonic())
            try:
                if due:
                    self._close(consumer, files, due, producer, sender)
            except AuthFailedError as exc:
                # The range stays sealed and recorded: put again once S3 takes it.
                self._wait_for_credentials(files, exc)
                self._resume(consumer)
            except InterruptedError:
                break

    # -- reading ------------------------------------------------------------------------------
    def _read_recorded_ends(self, consumer: Consumer) -> None:
        """For partitions just assigned: the range end an earlier owner recorded, if any.
        Raises ``KafkaException`` when the group coordinator does not answer (the
        supervisor restarts the worker: reading on without it could re-cut a range)."""
        if not self._unchecked:
            return
        wanted = [TopicPartition(self._topic, p) for p in sorted(self._unchecked)]
        for tp in consumer.committed(wanted, timeout=COMMIT_TIMEOUT_S):
            if tp.error is not None:
                raise KafkaException(tp.error)
            end = recorded_end(tp.metadata)
            self._files.assigned(tp.partition, end)
            if end is not None:
                log.info(
                    "destination %s: partition %d resumes a range recorded up to offset %d",
                    self.destination.id,
                    tp.partition,
                    end,
                )
        self._unchecked.clear()

    def _add(self, batch: list[Message], sink: Sink[Any]) -> None:
        matches = self.destination.filter.matches
        read = event_reader(sink)
        erasures = self._erasures() if self._erasures is not None else None
        now = time.monotonic()
        for message in batch:
            partition = message.partition() or 0
            if partition not in self._owned:
                continue  # fetched before it was revoked: its new owner reads it
            offset = message.offset() or 0
            value = message.value() or b""
            if erasures:
                value = erasures.erased_value(value)
            try:
                head = read(value)
            except ValueError as exc:
                self._files.skip(partition, offset, now, (message, str(exc)))
                continue
            if matches(head.event_key, head.outcome, head.account_id):
                record = sink.encode(head, value)
                self._files.add(partition, offset, record.path, record.line, now)
            else:
                self._files.skip(partition, offset, now)

    # -- closing ------------------------------------------------------------------------------
    def _close(
        self,
        consumer: Consumer,
        files: FileSink,
        due: list[Range],
        producer: Producer,
        sender: ThreadPoolExecutor,
    ) -> None:
        """Records the ends of ``due`` ranges, puts their files, dead-letters their
        unreadable records, commits their ends and forgets them. Raises
        ``AuthFailedError`` / ``InterruptedError`` as ``Delivery`` does (nothing of the
        ranges is committed then)."""
        if not self._record_ends(consumer, [r for r in due if r.files and not r.recorded]):
            return  # tried again at the next look
        futures: list[Future[None]] = []
        delivery = self._delivery(_Puts(files), self._stats)
        for closing in due:
            for path, file in closing.files.items():
                futures.append(sender.submit(self._put, files, delivery, closing, path, file))
        try:
            for future in futures:
                self._await(future)
        except AuthFailedError:
            self._abandon(futures)
            raise
        self._resume(consumer)
        letters = [
            Letter.of(message, reason, Reply(None, "unreadable", ""))
            for closing in due
            for message, reason in closing.letters
        ]
        if letters:
            self._dead_letter(producer, letters)
        owned = [r for r in due if r.partition in self._owned]
        self._commit_ends(consumer, owned)
        for closing in due:
            self._files.closed(closing)
            self.status.delivered += closing.events
            self.status.dead_lettered += len(closing.letters)
            self.status.filtered += closing.skipped - len(closing.letters)
        self.status.retries = self._stats.retries
        self.status.last_success = time.time()
        self.status.failing_since = None
        self._set_state("healthy", None)

    def _put(
        self, files: FileSink, delivery: Delivery[Any], closing: Range, path: str, file: OpenFile
    ) -> None:
        """Closes and puts one file (in a sender thread): gzip here, off the consumer."""
        name = f"{closing.partition}-{file.first}-{file.last}"
        refused = delivery.deliver([files.file(path, name, file.lines)])
        if refused:
            # Not the data (S3 does not read it): a request S3 will never take as made.
            raise AuthFailedError(refused[0].reply)

    def _record_ends(self, consumer: Consumer, ranges: list[Range]) -> bool:
        """Records each range's last offset in Kafka before any of its files is put (a
        synchronous commit of its first offset, with the end as metadata)."""
        if not ranges:
            return True
        offsets = [
            TopicPartition(self._topic, r.partition, r.first, metadata=end_mark(r.last))
            for r in ranges
        ]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.info("destination %s: range ends not recorded (%s)", self.destination.id, exc)
            return False
        for r in ranges:
            r.end = r.last
        return True

    def _commit_ends(self, consumer: Consumer, ranges: list[Range]) -> None:
        if not ranges:
            return
        offsets = [TopicPartition(self._topic, r.partition, r.last + 1) for r in ranges]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # The partitions moved meanwhile: their new owner puts the recorded range again
            # (the same keys: no duplicate object).
            log.info("destination %s: range ends not committed (%s)", self.destination.id, exc)

    # -- the group ------------------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        super()._on_assign(consumer, partitions)
        for tp in partitions:
            self._owned.add(tp.partition)
            self._unchecked.add(tp.partition)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        super()._on_revoke(consumer, partitions)
        for tp in partitions:
            self._owned.discard(tp.partition)
            self._unchecked.discard(tp.partition)
            self._files.revoked(tp.partition)
