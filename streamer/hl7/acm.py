"""`enecg acm`: the IHE PCD-04 Alert Reporter. A secondary alarm path that never replaces the bedside alarm.

Reads the alerts topic in its own consumer group and sends every state change as an ORU^R40 over one MLLP
link, one message in flight. Delivery is decided by the ACK: AA moves on; AE and a lost link are retried with
a doubling wait (the same message, the same MSH-10); AR is final and goes to the dead-letter topic with the
reason. The input offset is committed only after that decision.

De-duplication on (alert_id, state, seq): every decided state change is appended to a journal file before its
offset is committed, and the journal is read back at start, so a crash between an ACK and its commit (or a
worker republishing a state change) never sends the same state change twice. Resends of one message keep
its MSH-10, so an alert manager can drop them too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from pathlib import Path

from aiokafka import ConsumerRecord

from streamer.contract import Alert, AlertState, DeadLetter, decode_record, encode
from streamer.hl7.messages import Header, alert_control_id, build_alert
from streamer.hl7.metrics import Hl7Metrics
from streamer.hl7.mllp import LINK_ERRORS, MllpLink
from streamer.kafka_io import make_consumer, make_producer
from streamer.settings import Hl7Settings, KafkaSettings, TopicSettings

log = logging.getLogger(__name__)
MAX_REMEMBERED = 100_000  # (alert_id, state, seq) keys and inactivation states kept for de-duplication


class Journal:
    """Append-only lines ``alert_id state seq`` of decided state changes; compacted to the newest
    MAX_REMEMBERED when it grows past twice that. A process crash keeps what was written (no fsync needed)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.keys: OrderedDict[tuple[str, str, int], None] = OrderedDict()
        self._file = None
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[2].isdigit():  # a torn last line (crash mid-write) is skipped
                    self.keys[(parts[0], parts[1], int(parts[2]))] = None
        self._compact()

    def __contains__(self, key: tuple[str, str, int]) -> bool:
        return key in self.keys

    def add(self, key: tuple[str, str, int]) -> None:
        self.keys[key] = None
        if self._file is not None:
            self._file.write(f"{key[0]} {key[1]} {key[2]}\n")
            self._file.flush()
        if len(self.keys) > 2 * MAX_REMEMBERED:
            self._compact()

    def _compact(self) -> None:
        while len(self.keys) > MAX_REMEMBERED:
            self.keys.popitem(last=False)
        if self.path is None:
            return
        if self._file is not None:
            self._file.close()
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(f"{a} {s} {q}\n" for a, s, q in self.keys))
        tmp.replace(self.path)
        self._file = open(self.path, "a")  # noqa: SIM115 - held for the reporter's life

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class AcmReporter:
    def __init__(
        self,
        kafka: KafkaSettings,
        topics: TopicSettings,
        hl7: Hl7Settings,
        link: MllpLink,
        metrics: Hl7Metrics,
        journal: Journal,
    ) -> None:
        self.kafka, self.topics, self.hl7, self.link, self.metrics = kafka, topics, hl7, link, metrics
        self.header = Header(
            sending_application=hl7.sending_application,
            sending_facility=hl7.sending_facility,
            receiving_application=hl7.receiving_application,
            receiving_facility=hl7.receiving_facility,
        )
        self.journal = journal
        self._acknowledged = {alert_id for alert_id, state, _ in journal.keys if state == "acknowledged"}

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: consume, deliver, commit. A stop during a retry leaves that record uncommitted."""
        consumer = make_consumer(self.kafka, group_id=self.hl7.acm_group, max_poll_interval_ms=24 * 3600 * 1000)
        producer = make_producer(self.kafka, linger_ms=0)
        try:
            await producer.start()
            await consumer.start()
            consumer.subscribe([self.topics.alerts])
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200)
                for tp, records in batches.items():
                    for record in records:
                        if not await self._handle(record, producer, stop):
                            return
                        await consumer.commit({tp: record.offset + 1})
        finally:
            self.journal.close()
            await self.link.close()
            await consumer.stop()
            await producer.stop()

    async def _handle(self, record: ConsumerRecord, producer, stop: asyncio.Event) -> bool:
        """Delivers one record (or dead-letters it); False when stopped before an answer."""
        try:
            alert = decode_record(record.value or b"", Alert)
        except ValueError as error:
            await self._dead_letter(producer, record, str(error))
            return True
        assert isinstance(alert, Alert)
        key = (alert.alert_id, alert.state.value, alert.seq)
        if key in self.journal:
            self.metrics.duplicates.inc()
            return True
        message = build_alert(alert, self._inactivation(alert), self.header, time.time_ns())
        wait_s = self.hl7.retry_initial_s
        while not stop.is_set():
            started = time.perf_counter()
            try:
                self.metrics.messages.inc()
                ack = await self.link.send(message)
            except LINK_ERRORS as error:
                log.warning("alert manager link: %s: %s; retrying in %.1f s", type(error).__name__, error, wait_s)
                self.metrics.retried.labels("link").inc()
            else:
                self.metrics.acks.labels(ack.code).inc()
                self.metrics.ack_latency_ms.observe((time.perf_counter() - started) * 1000)
                if ack.control_id != alert_control_id(alert):
                    log.warning("ACK answers %s, not %s: reconnecting", ack.control_id, alert_control_id(alert))
                    await self.link.close()
                    self.metrics.retried.labels("link").inc()
                elif ack.code in ("AA", "CA"):
                    self._remember(alert, key)
                    return True
                elif ack.code in ("AR", "CR"):
                    reason = f"alert manager rejected ORU^R40 ({ack.code}): {ack.text}"
                    await self._dead_letter(producer, record, reason)
                    self._remember(alert, key)
                    return True
                else:
                    log.warning("alert manager answered %s (%s); retrying in %.1f s", ack.code, ack.text, wait_s)
                    self.metrics.retried.labels("ae").inc()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait_s)
            wait_s = min(wait_s * 2, self.hl7.retry_max_s)
        return False

    def _inactivation(self, alert: Alert) -> str:
        """MDC_ATTR_ALARM_INACTIVATION_STATE from this alert's history as seen here (the contract carries the
        audio pause only in the message text)."""
        if alert.state is AlertState.acknowledged or alert.alert_id in self._acknowledged:
            return "acknowledged"
        return "audio-paused" if "[audio paused]" in alert.message else "enabled"

    def _remember(self, alert: Alert, key: tuple[str, str, int]) -> None:
        self.journal.add(key)
        if alert.state is AlertState.acknowledged:
            self._acknowledged.add(alert.alert_id)
        elif alert.state is AlertState.cleared:
            self._acknowledged.discard(alert.alert_id)

    async def _dead_letter(self, producer, record: ConsumerRecord, reason: str) -> None:
        log.error("dead letter: %s", reason)
        letter = DeadLetter(
            reason=reason,
            original=record.value or b"",
            original_key=record.key,
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        await producer.send_and_wait(self.topics.deadletter, encode(letter), key=record.key)
        self.metrics.dead_lettered.inc()
