"""What a worker does when the group hands it partitions (part 2 of delivery.py's mechanism, wired to the worker).

Kafka's eager rebalance revokes every partition and then assigns anew: beds of partitions assigned again keep their
state, the others' state is dropped, and new partitions are rebuilt before Faust resumes fetching them: the bed
settings read, the published alerts read into the ledger and the engine, and the signal before the committed
offset replayed through the same pipeline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from streamer.metrics import WorkerMetrics
from streamer.settings import KafkaSettings, TopicSettings
from streamer.worker.bed_settings import SettingsFollower
from streamer.worker.config import YIELD_EVERY, WorkerConfig
from streamer.worker.core import Core, Outcome
from streamer.worker.delivery import Ledger, committed_offsets, read_alerts, read_back

log = logging.getLogger("streamer.worker")
SETTINGS_CATCH_UP_S = 10.0  # the bed-settings topic read on assignment, at most this long


@dataclass
class PartitionRebuilder:
    """Called with each new assignment (`App.before_assigned`); `held` is what the worker serves now."""

    kafka: KafkaSettings
    topics: TopicSettings
    config: WorkerConfig
    core: Core
    ledger: Ledger
    follower: SettingsFollower
    metrics: WorkerMetrics
    publish: Callable[[Outcome], Awaitable[None]]  # sends an outcome's records and waits for the broker
    on_rebuilt: Callable[[], None]  # the replayed windows wait for the flush loop: wake it
    held: set[TopicPartition] = field(default_factory=set)

    async def __call__(self, assigned: set) -> None:
        now_held = {TopicPartition(tp.topic, tp.partition) for tp in assigned if tp.topic != self.topics.actions}
        gone, new = self.held - now_held, now_held - self.held
        self.held.clear()
        self.held.update(now_held)
        if gone:
            beds = self.core.drop_partitions((tp.topic, tp.partition) for tp in gone)
            self.ledger.forget_beds(beds)
            log.info("partitions revoked %s beds_dropped=%d", sorted(tp.partition for tp in gone), len(beds))
        if not new:
            log.info("partitions assigned new=[] kept=%s", sorted(tp.partition for tp in now_held))
            return
        started = time.monotonic()
        try:
            await self.follower.catch_up(SETTINGS_CATCH_UP_S)  # before any window of the new beds is judged
        except Exception as error:  # never blind a bed over its settings: judge it by those in force
            log.error("bed settings not read before serving (%s): defaults in force until they are", error)
        published = await read_alerts(self.kafka, self.topics.alerts, self.config.alerts_lookback)
        for alert in published:
            self.ledger.record(alert)
        committed = await committed_offsets(self.kafka, self.config.group, new)
        needed_ns = round((self.core.spec.window_s + self.config.rebuild_margin_s) * 1e9)
        replayed = await read_back(self.kafka, committed, needed_ns)
        arriving = {record.chunk.bed_id for record in replayed} - set(self.core.beds)
        self.core.alarms.restore(a for a in published if a.bed_id in arriving)
        for n, record in enumerate(replayed, 1):
            if n % YIELD_EVERY == 0:  # the beds this worker already serves are served meanwhile
                await asyncio.sleep(0)
            _, outcome = self.core.ingest(record.chunk, None, record.topic, record.partition)
            if outcome.alerts:
                await self.publish(outcome)
            self.metrics.rebuilt_chunks.inc()
        self.on_rebuilt()
        log.info(
            "partitions assigned new=%s committed=%d replayed_chunks=%d bed_settings=%d in %.2f s",
            sorted(tp.partition for tp in new),
            len(committed),
            len(replayed),
            len(self.core.alarms.book),
            time.monotonic() - started,
        )
