"""The worker's view of the compacted bed-settings topic: read whole before a partition is served, then followed.

Every worker reads every partition (no consumer group): a bed's record and its unit's defaults may sit on any
partition, and the topic is small (one record per bed and unit once compacted). `catch_up` reads to the high
watermark that fetches report (never ListOffsets: Tansu's end offsets are wrong, KAFKA-BROKER-NOTES.md defect 1)
and is awaited on every assignment before the replay that rebuilds beds, so a restarted or rebalanced worker
judges its first windows by the settings in force. A record that is not valid settings never reaches the book:
the worker holding that partition number of the waveform topic writes it to the dead-letter topic, with the
reason (again after its restart: at least once), and every bed keeps the settings it had. A settings topic that
cannot be read (missing, broker trouble) never stops monitoring: the beds are judged by the settings in force
(unit and engine defaults at first), the error is logged, and the follower retries until it has read the topic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from streamer.alarms.bed_settings import SettingsBook
from streamer.contract import BedSettings, DeadLetter, decode_record
from streamer.kafka_io import caught_up, make_consumer, topic_partitions
from streamer.settings import KafkaSettings

log = logging.getLogger("streamer.worker.settings")
RETRY_S = 2.0  # between attempts to read a settings topic that could not be read
#: A settings change is in force within about this long. The dev broker holds every fetch for the full wait, so
#: its 20 ms for waveforms would cost an idle worker ~0.015 cores just to follow this rarely written topic.
FETCH_WAIT_MS = 250


class SettingsFollower:
    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        book: SettingsBook,
        dead_letter: Callable[[DeadLetter], Awaitable[None]],
        holds_partition: Callable[[int], bool],
    ) -> None:
        self.kafka, self.topic, self.book = kafka, topic, book
        self.dead_letter, self.holds_partition = dead_letter, holds_partition
        self._consumer: AIOKafkaConsumer | None = None  # made in the event loop, on the first catch-up
        self._parts: list[TopicPartition] = []
        self._lock = asyncio.Lock()
        self.ready = asyncio.Event()

    async def catch_up(self, timeout_s: float = 30.0) -> int:
        """Reads every partition up to its high watermark; returns the records applied."""
        async with self._lock:
            if self._consumer is None:
                self._consumer = make_consumer(self.kafka, fetch_max_wait_ms=FETCH_WAIT_MS)
                await self._consumer.start()
            applied = 0
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            if not self._parts:
                self._parts = await topic_partitions(self._consumer, self.topic)
                self._consumer.assign(self._parts)
                await self._consumer.seek_to_beginning(*self._parts)
            while not await caught_up(self._consumer, self._parts):
                if loop.time() > deadline:
                    raise TimeoutError(f"{self.topic} not read to its end within {timeout_s:g} s")
                applied += await self._poll(100)
            self.ready.set()
            return applied

    async def follow(self) -> None:
        """Applies new records as they come, reading the topic whole first where no catch-up has yet; never
        raises but on cancellation."""
        while True:
            try:
                if not self.ready.is_set():
                    await self.catch_up()
                async with self._lock:
                    await self._poll(200)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the settings in force stay; the next attempt retries
                log.error("reading %s failed (%s); beds keep the settings in force; retrying", self.topic, error)
                await asyncio.sleep(RETRY_S)
            await asyncio.sleep(0)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def _poll(self, timeout_ms: int) -> int:
        assert self._consumer is not None
        applied = 0
        for records in (await self._consumer.getmany(timeout_ms=timeout_ms, max_records=500)).values():
            for record in records:
                applied += await self._take(record)
        return applied

    async def _take(self, record: ConsumerRecord) -> int:
        """One record into the book, or to the dead letters with the reason; never raises."""
        try:
            settings = decode_record(record.value or b"", BedSettings)
            assert isinstance(settings, BedSettings)
            key = (record.key or b"").decode(errors="replace")
            if key != settings.key:
                raise ValueError(f"key {key[:80]!r} does not name these settings (expected {settings.key!r})")
        except Exception as error:  # ValueError: not valid settings; anything else is a bug, and still no stop
            log.warning("bad bed settings partition=%d offset=%d: %s", record.partition, record.offset, error)
            if self.holds_partition(record.partition):
                letter = DeadLetter.of(
                    str(error), record.value, key=record.key, topic=record.topic, partition=record.partition,
                    offset=record.offset,
                )  # fmt: skip
                await self.dead_letter(letter)
            return 0
        if not self.book.apply(settings):
            return 0
        log.info(
            "bed settings in force key=%s hr=%g-%g disabled=%s by=%s",
            settings.key, settings.hr_low_bpm, settings.hr_high_bpm, ",".join(settings.disabled) or "-", settings.user,
        )  # fmt: skip
        return 1
