"""At-least-once delivery without transactions and without end offsets: how a restart alerts nothing twice.

The mechanism, in three parts (Tansu breaks transactions and answers ListOffsets(LATEST) wrongly, so neither
is used; only committed offsets and the high watermark that fetch responses carry):

1. **Commit after publish.** The waveform stream runs with manual acks. A chunk is acknowledged to Faust only
   once the outputs of every window it completed (alerts and vitals) were acknowledged by the broker
   (`AckTracker`); a chunk that completed no window is acknowledged as soon as everything before it in its
   partition is (acks go out in offset order: Faust's first commit of a partition would otherwise skip
   messages still in flight). Faust commits the highest offset below which everything is acknowledged, so
   after a crash every window whose outputs might be missing is re-derived from the input topic.
2. **Bounded replay on assignment.** Bed state (buffers, window positions, alarm persistence) lives in memory
   with the partition. When a worker is given a waveform partition that has a committed offset `c`, it reads
   the records before `c` back (`read_back`: doubling the span until every bed seen has one window plus a
   margin of signal, or the partition start) and feeds them through the same pipeline before Faust resumes
   at `c`. The windows this produces are re-derivations of ones already published.
3. **A ledger of what was published** (`Ledger`, pure). On assignment the worker reads the last records of
   the alerts topic back (`read_alerts`) into the ledger: the published (alert_id, state, seq) set and, per
   (bed, condition), the alert that is still active. Before publishing, every alert passes `Ledger.admit`:
   a record already published is dropped; an alert the engine re-raises for a condition that is still active
   under an earlier id (because the replay began after that episode's onset) is renamed to the published id,
   its raise suppressed and its later states numbered on from the published seq. Alert ids are deterministic
   (bed, condition, onset), so a replay that covers the onset reproduces the same ids anyway.

Vitals are idempotent per (bed_id, window_start_ns) and may be re-published after a crash (at-least-once).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streamer.contract import Alert, AlertState, WaveformChunk, decode_record, decode_waveform
from streamer.kafka_io import make_consumer
from streamer.settings import KafkaSettings

# ------------------------------------------------------------------------------------------- the ledger

KEEP_CLEARED_S = 3600.0  # signal time a cleared episode stays in the ledger
PRUNE_EVERY = 10_000  # episodes held before the first pruning (then twice those kept)


@dataclass
class _Published:
    alert_id: str
    bed_id: str
    condition: str
    onset_time_ns: int
    state: AlertState
    seq: int
    event_time_ns: int


@dataclass
class _Renamed:
    """An engine alert id mapped onto the id already published for the same active episode."""

    published_id: str
    onset_time_ns: int
    seq_offset: int  # published seq - engine seq at the moment of mapping


@dataclass
class Ledger:
    """What this consumer group already published on the alerts topic; decides what may be published now."""

    _seen: dict[str, set[tuple[str, int]]] = field(default_factory=dict)  # alert_id -> its (state, seq) published
    _latest: dict[str, _Published] = field(default_factory=dict)
    _active: dict[str, dict[str, str]] = field(default_factory=dict)  # bed -> condition -> alert_id
    _open: dict[str, list[Alert]] = field(default_factory=dict)  # alert_id not cleared -> latest record, its ack
    _renamed: dict[str, _Renamed] = field(default_factory=dict)
    _newest_ns: int = 0  # the newest event time recorded
    _prune_at: int = PRUNE_EVERY  # episodes held when `_prune` runs next

    def record(self, alert: Alert) -> None:
        """Notes an alert as published (read back from the topic, or just sent)."""
        self._seen.setdefault(alert.alert_id, set()).add((alert.state.value, alert.seq))
        latest = self._latest.get(alert.alert_id)
        if latest is None or alert.seq >= latest.seq:
            self._latest[alert.alert_id] = _Published(
                alert.alert_id, alert.bed_id, alert.condition, alert.onset_time_ns, alert.state, alert.seq,
                alert.event_time_ns,
            )  # fmt: skip
            self._newest_ns = max(self._newest_ns, alert.event_time_ns)
            if len(self._latest) > self._prune_at:
                self._prune()
        active = self._active.setdefault(alert.bed_id, {})
        if alert.state is AlertState.cleared:
            self._open.pop(alert.alert_id, None)
            if active.get(alert.condition) == alert.alert_id:
                del active[alert.condition]
        elif self._latest[alert.alert_id].state is not AlertState.cleared:
            active[alert.condition] = alert.alert_id
            records = self._open.setdefault(alert.alert_id, [alert])
            if alert.seq >= records[0].seq:
                records[0] = alert
            if alert.state is AlertState.acknowledged:
                records[1:] = [alert]
        if not active:
            del self._active[alert.bed_id]

    def open_alerts(self, bed: str) -> list[Alert]:
        """The records of the bed's alarms not yet cleared (each one's latest and its acknowledge), for a worker
        that takes the bed up without its state: back after its idle timeout, or silent through a restart."""
        ids = self._active.get(bed, {}).values()
        return [record for alert_id in ids for record in self._open.get(alert_id, ())]

    def admit(self, alert: Alert) -> Alert | None:
        """The record to publish for an engine alert, or None when it was published already."""
        renamed = self._renamed.get(alert.alert_id)
        if renamed is None and alert.state is AlertState.raised:
            active_id = self._active.get(alert.bed_id, {}).get(alert.condition)
            if active_id is not None and active_id != alert.alert_id:
                active = self._latest[active_id]
                if active.onset_time_ns <= alert.onset_time_ns:
                    self._renamed[alert.alert_id] = _Renamed(active_id, active.onset_time_ns, active.seq - alert.seq)
                    return None  # the episode's raise is out already
        if renamed is not None:
            alert = alert.model_copy(
                update={
                    "alert_id": renamed.published_id,
                    "onset_time_ns": renamed.onset_time_ns,
                    "seq": alert.seq + renamed.seq_offset,
                }
            )
        if (alert.state.value, alert.seq) in self._seen.get(alert.alert_id, ()):
            return None
        return alert

    def _prune(self) -> None:
        """Drops the episodes cleared more than `KEEP_CLEARED_S` before the newest record: the engine re-derives
        old windows only while rebuilding a partition, which reads the alerts topic into the ledger first, so the
        ledger needs no older past (it grew by ~800 bytes an episode for as long as the worker ran)."""
        horizon = self._newest_ns - round(KEEP_CLEARED_S * 1e9)
        old = {i for i, p in self._latest.items() if p.state is AlertState.cleared and p.event_time_ns < horizon}
        for alert_id in old:
            del self._latest[alert_id]
            self._seen.pop(alert_id, None)
        self._renamed = {engine_id: r for engine_id, r in self._renamed.items() if r.published_id not in old}
        self._prune_at = max(PRUNE_EVERY, 2 * len(self._latest))

    def __len__(self) -> int:
        """Episodes (alert ids) held."""
        return len(self._latest)

    def forget_beds(self, beds: Iterable[str]) -> None:
        """Drops the renames of beds this worker no longer holds (their published facts stay)."""
        beds = set(beds)
        self._renamed = {
            engine_id: r for engine_id, r in self._renamed.items() if self._latest[r.published_id].bed_id not in beds
        }


# ---------------------------------------------------------------------------------------- acks to Faust


@dataclass
class _Held:
    message: Any
    windows_left: int


class AckTracker:
    """Acknowledges input messages once every window they completed has its outputs on the broker, and in
    offset order per partition: Faust commits "the highest offset with everything below acknowledged", but
    for a partition's first commit it assumes the acknowledged offsets begin at the start, so an
    out-of-order ack there would commit past a message still in flight."""

    def __init__(self, ack: Callable[[Any], object]) -> None:
        """`ack(message)` acknowledges one input message to Faust."""
        self._ack = ack
        self._queues: dict[Hashable, deque[_Held]] = {}  # partition -> held messages, in offset order
        self._held: dict[int, tuple[Hashable, _Held]] = {}  # id(message) -> (partition, entry)

    def hold(self, message: Any, n_windows: int, partition: Hashable) -> None:
        """Call in consumption order; `n_windows` = windows this message completed (0: done already)."""
        entry = _Held(message, n_windows)
        self._queues.setdefault(partition, deque()).append(entry)
        if n_windows > 0:
            self._held[id(message)] = (partition, entry)
        else:
            self._release(partition)

    def window_done(self, message: Any | None) -> None:
        if message is None:  # a window re-derived while rebuilding: its input is committed already
            return
        found = self._held.get(id(message))
        if found is None:
            return
        partition, entry = found
        entry.windows_left -= 1
        if entry.windows_left <= 0:
            del self._held[id(message)]
            self._release(partition)

    def _release(self, partition: Hashable) -> None:
        queue = self._queues[partition]
        while queue and queue[0].windows_left <= 0:
            self._ack(queue.popleft().message)

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())


# ------------------------------------------------------------------------------------ reading back (Kafka)


@dataclass(frozen=True)
class Replayed:
    """A waveform record read back before the committed offset."""

    chunk: WaveformChunk
    topic: str
    partition: int
    offset: int


async def committed_offsets(settings: KafkaSettings, group: str, tps: Iterable[TopicPartition]) -> dict:
    """The group's committed offsets for `tps` (missing = nothing committed)."""
    tps = list(tps)
    if not tps:
        return {}
    admin = AIOKafkaAdminClient(**settings.aiokafka_kwargs(), request_timeout_ms=10_000)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta is not None and meta.offset >= 0}


async def _read_range(consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, stop: int) -> list:
    """Records of `tp` with start <= offset < stop."""
    consumer.seek(tp, start)
    records: list = []
    while True:
        position = await consumer.position(tp)
        if position >= stop:
            break
        batch = await consumer.getmany(tp, timeout_ms=500)
        got = batch.get(tp, [])
        if not got and consumer.highwater(tp) is not None and position >= consumer.highwater(tp):
            break  # the partition ends before `stop` (should not happen: stop is a committed offset)
        records.extend(r for r in got if r.offset < stop)
    return records


async def read_back(
    settings: KafkaSettings, committed: dict[TopicPartition, int], needed_ns: int, max_records: int = 1 << 16
) -> list[Replayed]:
    """Waveform records just before each committed offset: enough for every bed seen to hold `needed_ns`."""
    if not committed:
        return []
    consumer = make_consumer(settings)
    await consumer.start()
    replayed: list[Replayed] = []
    try:
        consumer.assign(list(committed))
        for tp, stop in committed.items():
            span = 256
            while True:
                start = max(0, stop - span)
                records = await _read_range(consumer, tp, start, stop)
                chunks = [(r, decode_waveform(r.value)) for r in records]
                good = [(r, c) for r, c in chunks if isinstance(c, WaveformChunk)]
                if start == 0 or span >= max_records or _covers(good, needed_ns):
                    break
                span *= 2
            replayed.extend(Replayed(c, tp.topic, tp.partition, r.offset) for r, c in good)
    finally:
        await consumer.stop()
    return replayed


def _covers(good: list, needed_ns: int) -> bool:
    """Whether each bed's chunks in `good` span at least `needed_ns` of signal."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for _, chunk in good:
        first[chunk.bed_id] = min(first.get(chunk.bed_id, chunk.start_time_ns), chunk.start_time_ns)
        end = chunk.start_time_ns + chunk.duration_ns
        last[chunk.bed_id] = max(last.get(chunk.bed_id, end), end)
    return bool(first) and all(last[bed] - first[bed] >= needed_ns for bed in first)


async def read_alerts(settings: KafkaSettings, topic: str, lookback: int) -> list[Alert]:
    """The last `lookback` records of every partition of the alerts topic (end taken from fetch high watermarks)."""
    consumer = make_consumer(settings)
    await consumer.start()
    alerts: list[Alert] = []
    try:
        numbers = consumer.partitions_for_topic(topic)
        if not numbers:
            await consumer._client.force_metadata_update()
            numbers = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(numbers)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        for _ in range(50):  # one answered fetch per partition gives its high watermark
            await consumer.getmany(*tps, timeout_ms=100, max_records=1)
            if all(consumer.highwater(tp) is not None for tp in tps):
                break
            await asyncio.sleep(0)
        for tp in tps:
            end = consumer.highwater(tp) or 0
            for record in await _read_range(consumer, tp, max(0, end - lookback), end):
                try:
                    alerts.append(decode_record(record.value, Alert))  # type: ignore[arg-type]
                except ValueError:
                    continue  # not ours to judge: the alerts topic is written by workers only
    finally:
        await consumer.stop()
    return alerts
