"""Sends a replay plan to Kafka on its schedule and accounts for every planned message.

The plan decides what goes out and when (signal time); this module only waits (``due_s / speed`` of wall
time), sends with the bed id as key, counts, and reports progress.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from streamer.kafka_io import make_producer
from streamer.replay.plan import Event, ReplayConfig, plan_replay
from streamer.replay.sources import Recording
from streamer.settings import KafkaSettings

MAX_IN_FLIGHT = 20_000  # send futures awaited in bulk; bounds memory when running as fast as possible


class ReplaySummary(BaseModel):
    """What a replay did; `--json` prints this."""

    topic: str
    beds: int
    records: list[str]
    encoding: str
    speed: float
    messages_sent: int = 0
    chunks_sent: int = 0
    duplicated: int = 0
    reordered: int = 0
    corrupted: int = 0
    dropped: int = 0
    gap_chunks: int = 0
    bytes_sent: int = 0
    signal_s: float = 0.0
    elapsed_s: float = 0.0
    realtime_factor: float | None = None  # signal seconds per wall second, per bed
    bed_seconds_per_s: float | None = None  # the same over all beds: beds x realtime_factor
    messages_per_s: float | None = None
    interrupted: bool = False
    corruption_kinds: dict[str, int] = {}

    def add(self, event: Event) -> None:
        if event.kind in ("drop", "gap"):
            self.dropped += event.kind == "drop"
            self.gap_chunks += event.kind == "gap"
            return
        assert event.value is not None
        self.messages_sent += 1
        self.bytes_sent += len(event.value)
        self.chunks_sent += event.kind in ("chunk", "reordered")
        self.duplicated += event.kind == "duplicate"
        self.reordered += event.kind == "reordered"
        self.corrupted += event.kind == "corrupt"

    def finish(self, elapsed_s: float, signal_s: float, kinds: Counter[str]) -> None:
        self.elapsed_s = round(elapsed_s, 3)
        self.signal_s = round(signal_s, 3)
        if elapsed_s > 0:
            self.realtime_factor = round(signal_s / elapsed_s, 2)
            self.bed_seconds_per_s = round(self.beds * signal_s / elapsed_s, 1)
            self.messages_per_s = round(self.messages_sent / elapsed_s, 1)
        self.corruption_kinds = dict(sorted(kinds.items()))

    def lines(self) -> list[str]:
        rate = f"{self.messages_per_s:,.0f} msg/s" if self.messages_per_s is not None else "-"
        factor = "-"
        if self.realtime_factor is not None:
            factor = f"x{self.realtime_factor:,.1f} real time ({self.bed_seconds_per_s:,.0f} bed-seconds/s)"
        return [
            f"replayed {', '.join(self.records)} to {self.topic}: {self.beds} bed{'s' if self.beds != 1 else ''}, "
            f"{self.encoding}, "
            f"{'as fast as possible' if self.speed == 0 else f'speed {self.speed:g}'}"
            + (" (interrupted)" if self.interrupted else ""),
            f"  sent {self.messages_sent:,} messages ({self.bytes_sent / 1e6:,.2f} MB): {self.chunks_sent:,} chunks "
            f"({self.reordered:,} reordered), {self.duplicated:,} duplicates, {self.corrupted:,} corrupt",
            f"  lost on purpose: {self.dropped:,} dropped, {self.gap_chunks:,} in gaps",
            f"  {self.signal_s:,.1f} s of signal per bed in {self.elapsed_s:,.2f} s: {factor}, {rate}",
        ]


async def send_plan(
    events: Iterable[Event],
    producer: AIOKafkaProducer,
    summary: ReplaySummary,
    *,
    stop: asyncio.Event | None = None,
    progress: Callable[[ReplaySummary, float], None] | None = None,
    progress_every_s: float = 0.5,
) -> ReplaySummary:
    """Sends `events` (due-time ordered) on their schedule; returns `summary` filled in. Stops early when
    `stop` is set (the summary then says interrupted). Raises if the broker rejects a message."""
    speed = summary.speed
    started = time.monotonic()
    next_progress = started + progress_every_s
    in_flight: list[asyncio.Future] = []
    kinds: Counter[str] = Counter()
    signal_s = 0.0
    for event in events:
        if stop is not None and stop.is_set():
            summary.interrupted = True
            break
        if speed > 0:
            wait = started + event.due_s / speed - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        signal_s = max(signal_s, event.end_s)
        summary.add(event)
        if event.detail:
            kinds[event.detail] += 1
        if event.value is not None:
            in_flight.append(await producer.send(summary.topic, event.value, key=event.key))
        if len(in_flight) >= MAX_IN_FLIGHT:
            await asyncio.gather(*in_flight)
            in_flight.clear()
        if progress is not None and time.monotonic() >= next_progress:
            progress(summary, time.monotonic() - started)
            next_progress = time.monotonic() + progress_every_s
    await producer.flush()
    await asyncio.gather(*in_flight)
    summary.finish(time.monotonic() - started, signal_s, kinds)
    return summary


async def replay(
    recordings: list[Recording],
    config: ReplayConfig,
    settings: KafkaSettings,
    topic: str,
    *,
    linger_ms: int = 20,
    stop: asyncio.Event | None = None,
    progress: Callable[[ReplaySummary, float], None] | None = None,
) -> ReplaySummary:
    """Plans and sends a whole replay with its own producer; the summary says what went out."""
    summary = ReplaySummary(
        topic=topic,
        beds=config.beds,
        records=sorted({r.name for r in recordings}),
        encoding=config.encoding,
        speed=config.speed,
    )
    producer = make_producer(settings, linger_ms=linger_ms)
    try:
        await producer.start()  # inside: a broker that cannot be reached still gets its producer closed
        return await send_plan(plan_replay(recordings, config), producer, summary, stop=stop, progress=progress)
    finally:
        await producer.stop()
