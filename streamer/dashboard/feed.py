"""The dashboard's Kafka edge: alerts, vitals, strips and actions in; actions out.

No consumer group: the dashboard is a viewer, so it assigns itself every partition.
- Alerts are read from the beginning to rebuild the current alarm state. "Caught up" is judged from
  fetches (each partition's fetch-reported high watermark reached, or no alert arrived for `idle_s`),
  never from ListOffsets: Tansu's end offsets are wrong (KAFKA-BROKER-NOTES.md, defect 1).
- Vitals, actions, bed settings and audit records are also read from the beginning, by a third consumer, into
  the look-back stores (trends, alarm review, settings in force, audit: `history.py`); only the board's live
  view of vitals, waveform and actions starts at the end.
- Vitals, waveform and actions start at the end: they are live views. An end offset that comes out too
  small only replays a few old records, which the board orders by time and ignores.
On any Kafka error the session is torn down and restarted after a bounded, growing backoff; the alert
positions reached are kept, so a reconnect resumes instead of re-reading. aiokafka's fetch loop retries a
lost broker silently, so a metadata request every `probe_s[0]` seconds (answered within `probe_s[1]`) is what
notices an outage: `kafka` turns to "reconnecting" within the sum of the two (7 s by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError

from streamer.alarms.bed_settings import SettingsBook
from streamer.contract import (
    Alert,
    AlertAction,
    AuditRecord,
    BedSettings,
    Vitals,
    WaveformChunk,
    decode_record,
    decode_waveform,
    encode,
)
from streamer.dashboard.board import BedState, Board
from streamer.dashboard.history import AlarmLog, AuditLog, TrendStore
from streamer.dashboard.hub import Hub
from streamer.dashboard.logfmt import log_event
from streamer.dashboard.settings import DashboardSettings
from streamer.dashboard.strip import strip_event
from streamer.kafka_io import caught_up
from streamer.settings import KafkaSettings, TopicSettings

log = logging.getLogger(__name__)


class ActionNotPublished(RuntimeError):
    """The action could not be written to the actions topic (the caller must tell the user)."""


class TopicMissing(RuntimeError):
    """A topic the dashboard reads does not exist yet (it waits for it with the reconnect backoff)."""


class Feed:
    def __init__(
        self,
        board: Board,
        hub: Hub,
        kafka: KafkaSettings,
        topics: TopicSettings,
        settings: DashboardSettings,
        *,
        idle_s: float = 0.5,
        backoff_s: tuple[float, float] = (0.5, 10.0),
        send_timeout_s: float = 5.0,
        probe_s: tuple[float, float] = (2.0, 5.0),
    ) -> None:
        self.board, self.hub, self.kafka, self.topics, self.settings = board, hub, kafka, topics, settings
        self.idle_s = idle_s
        self.backoff_s = backoff_s
        self.send_timeout_s = send_timeout_s
        self.probe_s = probe_s
        self.caught_up = False
        self.connected = False
        self.records_caught_up = False  # the look-back stores hold every record written before they were read
        self.trends = TrendStore(settings.history_hours * 3600)
        self.alarm_log = AlarmLog(settings.history_hours * 3600)
        self.audit = AuditLog(settings.history_hours * 3600)
        self.book = SettingsBook()
        self._alert_positions: dict[TopicPartition, int] = {}
        self._record_positions: dict[TopicPartition, int] = {}
        self._producer: AIOKafkaProducer | None = None
        self._producer_lock = asyncio.Lock()
        self.counts = {"alerts": 0, "vitals": 0, "chunks": 0, "actions": 0, "undecodable": 0}

    # ------------------------------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        return {"kafka": "connected" if self.connected else "reconnecting", "ready": self.caught_up}

    def _set_status(self, *, connected: bool | None = None, caught_up: bool | None = None) -> None:
        before = self.status()
        if connected is not None:
            self.connected = connected
        if caught_up is not None:
            self.caught_up = caught_up
        if self.status() != before:
            self.hub.publish("status", self.status(), every_unit=True)

    # ------------------------------------------------------------------------------------------ consume

    async def run(self) -> None:
        """Consumes until cancelled; reconnects after errors with bounded exponential backoff."""
        delay = self.backoff_s[0]
        while True:
            started = time.monotonic()
            try:
                await self._session()
            except (KafkaError, OSError, TopicMissing) as error:
                self._set_status(connected=False)
                log_event(log, logging.WARNING, "kafka_session_failed", error=type(error).__name__, retry_s=delay)
            except Exception:  # a bug must not leave the page showing a live board that no longer updates
                self._set_status(connected=False)
                log.exception("dashboard feed failed; restarting in %.1f s", delay)
            if time.monotonic() - started > 30:
                delay = self.backoff_s[0]
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_s[1])

    async def _session(self) -> None:
        alerts = AIOKafkaConsumer(**self._consumer_kwargs("earliest"))
        live = AIOKafkaConsumer(**self._consumer_kwargs("latest"))
        looking_back = AIOKafkaConsumer(**self._consumer_kwargs("earliest"))
        try:
            await alerts.start()
            await live.start()
            await looking_back.start()
            t = self.topics
            record_parts = await _assign(looking_back, [t.vitals, t.actions, t.bed_settings, t.audit])
            for tp in record_parts:
                if tp in self._record_positions:
                    looking_back.seek(tp, self._record_positions[tp])
                else:
                    await looking_back.seek_to_beginning(tp)
            alert_parts = await _assign(alerts, [self.topics.alerts])
            live_parts = await _assign(live, [self.topics.vitals, self.topics.waveform, self.topics.actions])
            for tp in alert_parts:
                if tp in self._alert_positions:
                    alerts.seek(tp, self._alert_positions[tp])
                else:
                    await alerts.seek_to_beginning(tp)
            await live.seek_to_end(*live_parts)
            self._set_status(connected=True)
            log_event(log, logging.INFO, "kafka_connected", alert_partitions=len(alert_parts))
            async with asyncio.TaskGroup() as group:
                group.create_task(self._consume_alerts(alerts, alert_parts))
                group.create_task(self._consume(live, self._on_live))
                group.create_task(self._consume_records(looking_back, record_parts))
                group.create_task(self._probe(live))
        except* (KafkaError, OSError, TopicMissing) as errors:
            self._set_status(connected=False)  # now: stopping the consumers below can take a while
            raise errors.exceptions[0] from None
        finally:
            for consumer in (alerts, live, looking_back):
                await _stop(consumer, self.send_timeout_s)

    def _consumer_kwargs(self, reset: str) -> dict[str, Any]:
        kwargs = self.kafka.consumer_kwargs()
        kwargs.update(group_id=None, enable_auto_commit=False, auto_offset_reset=reset)
        return kwargs

    async def _probe(self, consumer: AIOKafkaConsumer) -> None:
        """Raises once the cluster stops answering metadata requests (ends the session: status reconnecting)."""
        interval_s, timeout_s = self.probe_s
        while True:
            await asyncio.sleep(interval_s)
            try:
                await asyncio.wait_for(consumer.topics(), timeout_s)
            except TimeoutError:
                raise KafkaConnectionError(f"no metadata from the cluster within {timeout_s:g} s") from None

    async def _consume_alerts(self, consumer: AIOKafkaConsumer, parts: list[TopicPartition]) -> None:
        last_record = time.monotonic()
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=500)
            for tp, records in batches.items():
                for record in records:
                    self._on_alert(record)
                self._alert_positions[tp] = records[-1].offset + 1
                last_record = time.monotonic()
            if not self.caught_up and (
                await _at_high_watermark(consumer, parts) or time.monotonic() - last_record > self.idle_s
            ):
                self._set_status(caught_up=True)
                log_event(log, logging.INFO, "alerts_caught_up", beds=len(self.board.beds))
                self.hub.publish("resync", {}, every_unit=True)

    async def _consume_records(self, consumer: AIOKafkaConsumer, parts: list[TopicPartition]) -> None:
        """Vitals, actions, settings and audit records, oldest first, into the look-back stores."""
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            now_ms = time.time_ns() // 1_000_000
            for tp, records in batches.items():
                for record in records:
                    self._on_record(record, now_ms)
                self._record_positions[tp] = records[-1].offset + 1
            if not self.records_caught_up and await caught_up(consumer, parts):
                self.records_caught_up = True
                log_event(log, logging.INFO, "records_caught_up", settings=len(self.book))

    def _on_record(self, record: ConsumerRecord, now_ms: int) -> None:
        t = self.topics
        if record.topic == t.vitals:
            if (vitals := self._decode(record, Vitals)) is not None:
                self.trends.add(vitals, now_ms)
        elif record.topic == t.actions:
            if (action := self._decode(record, AlertAction)) is not None:
                self.alarm_log.add_action(action)
        elif record.topic == t.bed_settings:
            if (settings := self._decode(record, BedSettings)) is not None:  # the workers dead-letter bad ones
                self.book.apply(settings)
        elif record.topic == t.audit and (audit := self._decode(record, AuditRecord)) is not None:
            self.audit.add(audit)

    async def _consume(self, consumer: AIOKafkaConsumer, handle: Callable[[ConsumerRecord], None]) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            for records in batches.values():
                for record in records:
                    handle(record)

    def _on_alert(self, record: ConsumerRecord) -> None:
        alert = self._decode(record, Alert)
        if alert is None:
            return
        self.counts["alerts"] += 1
        self.alarm_log.add_alert(alert)
        self._push(self.board.apply_alert(alert), live=self.caught_up)

    def _on_live(self, record: ConsumerRecord) -> None:
        if record.topic == self.topics.waveform:
            if not self.hub.clients:
                return  # strips are for eyes only: no browser, no decoding
            chunk = decode_waveform(record.value, topic=record.topic, partition=record.partition)
            if not isinstance(chunk, WaveformChunk):
                self.counts["undecodable"] += 1
                return
            bed = self.board.known_bed(chunk.bed_id)
            if bed is None and self.board.unit is not None and chunk.unit != self.board.unit:
                return
            self.counts["chunks"] += 1
            event = strip_event(chunk, self.settings.strip_rate_hz, self.settings.strip_leads)
            self.hub.publish("strip", event, chunk.unit or (bed.unit if bed else None))
        elif record.topic == self.topics.vitals:
            vitals = self._decode(record, Vitals)
            if vitals is not None:
                self.counts["vitals"] += 1
                self._push(self.board.apply_vitals(vitals, received_ms=record.timestamp))
        elif record.topic == self.topics.actions:
            action = self._decode(record, AlertAction)
            if action is not None:
                self.counts["actions"] += 1
                self._push(self.board.apply_action(action))

    def _decode(self, record: ConsumerRecord, model: type) -> Any:
        try:
            return decode_record(record.value or b"", model)
        except ValueError:
            self.counts["undecodable"] += 1
            log_event(
                log, logging.WARNING, "undecodable_record", topic=record.topic, partition=record.partition,
                offset=record.offset,
            )  # fmt: skip
            return None

    def _push(self, bed: BedState | None, *, live: bool = True) -> None:
        """Sends a changed bed to browsers; while catching up, browsers get one resync at the end instead."""
        if bed is not None and live:
            self.hub.publish("bed", bed.view(), bed.unit)

    # ------------------------------------------------------------------------------------------ produce

    async def publish(self, *writes: tuple[str, str, AlertAction | BedSettings | AuditRecord]) -> None:
        """Writes (topic, key, record) together and waits for the broker's acks; raises `ActionNotPublished`."""
        try:
            producer = await self._ensure_producer()

            async def send_all() -> None:
                sends = [await producer.send(topic, encode(rec), key=key.encode()) for topic, key, rec in writes]
                await asyncio.gather(*sends)

            await asyncio.wait_for(send_all(), self.send_timeout_s)
        except (KafkaError, OSError, TimeoutError) as error:
            await self._drop_producer()
            topics = ", ".join(topic for topic, _, _ in writes)
            log_event(log, logging.ERROR, "not_published", topics=topics, error=type(error).__name__)
            raise ActionNotPublished(f"could not publish to {topics}: {type(error).__name__}") from None

    async def publish_action(self, action: AlertAction, audit: AuditRecord | None = None) -> None:
        """Writes the action (and its audit record) keyed by bed and reflects it on the board; raises
        `ActionNotPublished`."""
        writes: list[tuple[str, str, Any]] = [(self.topics.actions, action.bed_id, action)]
        if audit is not None:
            writes.append((self.topics.audit, action.bed_id, audit))
        await self.publish(*writes)
        log_event(
            log, logging.INFO, "action_published", bed=action.bed_id, alert_id=action.alert_id or "*",
            action=action.action, user=action.user,
        )  # fmt: skip
        self._push(self.board.apply_action(action))

    async def _ensure_producer(self) -> AIOKafkaProducer:
        async with self._producer_lock:
            if self._producer is None:
                producer = AIOKafkaProducer(**self.kafka.aiokafka_kwargs(), acks="all", request_timeout_ms=5000)
                await asyncio.wait_for(producer.start(), self.send_timeout_s)
                self._producer = producer
            return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def close(self) -> None:
        await self._drop_producer()


async def _stop(consumer: AIOKafkaConsumer, timeout_s: float) -> None:
    """Stops a consumer, whatever state the broker left it in, within `timeout_s`. With the broker gone,
    aiokafka's stop() raises the CancelledError of its own fetch tasks: run apart, that cannot be taken for
    a cancellation of the feed (which would end it for good), while a real one still reaches us in `wait`."""
    stopping = asyncio.create_task(consumer.stop())
    await asyncio.wait({stopping}, timeout=timeout_s)
    if not stopping.done():
        stopping.cancel()
    elif not stopping.cancelled():
        stopping.exception()  # retrieved: the session is over either way, the next one starts from scratch


async def _assign(consumer: AIOKafkaConsumer, topic_names: list[str]) -> list[TopicPartition]:
    await consumer.topics()  # refreshes metadata for every topic
    parts = []
    for name in topic_names:
        partitions = consumer.partitions_for_topic(name)
        if not partitions:
            raise TopicMissing(name)
        parts += [TopicPartition(name, p) for p in sorted(partitions)]
    consumer.assign(parts)
    return parts


async def _at_high_watermark(consumer: AIOKafkaConsumer, parts: list[TopicPartition]) -> bool:
    """Whether every partition's position has reached the high watermark its last fetch reported."""
    for tp in parts:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True
