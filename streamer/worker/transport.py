"""Faust's aiokafka transport with the two changes this product needs, in one place.

1. **Bed partitions go together** (every broker): the waveform topic and the alert-actions topic are keyed by
   bed with the same partition count, so partition *p* of both must land on the same worker — the one holding
   those beds' state. `BedPartitionAssignor` gives every topic's partition *p* to the same member (Faust's
   default round-robin only does so by accident of the member count).
2. **Input arrives a fetch at a time** (every broker): Faust hands each record to its stream through four tasks
   and a queue (`Consumer._drain_messages` -> `wait_first` -> conductor -> channel -> stream), which cost as
   much as the worker's own work per chunk. Every record (waveforms and alert actions) goes to `App.on_batch`
   as one list per fetch instead, tracked for acks like a stream's events.
3. **Fetch requests are paced** (every broker): aiokafka's fetcher sends the next fetch request as soon as the
   last one's records are taken, and a broker answers at once while records wait, so input that arrives all
   the time is fetched some forty times a second at 100 beds, ten records each; each fetch costs the consumer
   thread, the event loop and the broker about the same whatever it brings. `pace_fetches` holds each request
   until `App.fetch_interval_s` after the one before: a record waits at most one interval more, and a fetch
   brings everything that arrived meanwhile (docs/benchmarks.md, "Pacing the fetch requests, not the takes").
4. **Dev broker only** (`KafkaSettings.dev_broker`): Tansu holds every fetch for the full `fetch_max_wait_ms`,
   and Faust's driver hard-codes 1500 ms in `AIOKafkaConsumerThread._create_worker_consumer`, which makes every
   hop cost ~0.5-2 s. We cap it at `DEV_FETCH_MAX_WAIT_MS` on the freshly created consumer, before it starts
   (aiokafka reads the attribute in `start()`). Production keeps Faust's value.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import aiokafka
import faust
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import Message

log = logging.getLogger("streamer.worker")
#: Tansu answers a fetch only after the full wait; 0 makes it answer nothing at all (broker notes, defect 2).
#: Each fetch costs the consumer thread and the broker CPU with or without data (at 20 ms: 0.04 cores of an idle
#: worker); 100 ms adds ~40 ms to the median latency on this broker, nothing on Kafka (docs/benchmarks.md).
DEV_FETCH_MAX_WAIT_MS = 100


class BedPartitionAssignor(AbstractPartitionAssignor):
    """Assigns partition number *p* of every subscribed topic to one member: members sorted, p round-robin."""

    name = "enecg-bed"
    version = 0

    @classmethod
    def assign(
        cls, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        member_ids = sorted(members)
        assignment: dict[str, dict[str, list[int]]] = collections.defaultdict(lambda: collections.defaultdict(list))
        topics = sorted({topic for meta in members.values() for topic in meta.subscription})
        for topic in topics:
            subscribers = [m for m in member_ids if topic in members[m].subscription]
            for partition in sorted(cluster.partitions_for_topic(topic) or ()):
                owner = subscribers[partition % len(subscribers)]
                assignment[owner][topic].append(partition)
        return {
            member: ConsumerProtocolMemberAssignment(cls.version, sorted(assignment[member].items()), b"")
            for member in members
        }

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        return ConsumerProtocolMemberMetadata(cls.version, list(topics), b"")

    @classmethod
    def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
        pass


def pace_fetches(fetcher: Any, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
    """Holds each of `fetcher`'s fetch requests until `interval_s` after the one before (point 3 above). Only
    fetch requests wait: offset resets and metadata updates go out as aiokafka plans them."""
    plan = fetcher._get_actions_per_node  # aiokafka's fetch loop asks this what to send each time it wakes
    next_request = 0.0

    def paced(assignment: Any) -> tuple:
        nonlocal next_request
        requests, resets, timeout, invalid_metadata, resumes = plan(assignment)
        if requests:
            now = clock()
            if now < next_request:  # the loop wakes again by then (or earlier, and asks again)
                return [], resets, min(timeout, next_request - now), invalid_metadata, resumes
            next_request = now + interval_s
        return requests, resets, timeout, invalid_metadata, resumes

    fetcher._get_actions_per_node = paced


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def on_start(self) -> None:
        await super().on_start()  # creates and starts the aiokafka consumer, and with it its fetcher
        if (interval_s := getattr(self.app, "fetch_interval_s", 0.0)) > 0:
            pace_fetches(self._consumer._fetcher, interval_s)

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Both attributes are read by AIOKafkaConsumer.start(), which has not run yet.
        consumer._partition_assignment_strategy = (BedPartitionAssignor,)
        if getattr(self.app, "dev_broker", False):
            consumer._fetch_max_wait_ms = DEV_FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's fetch loop (offset checks, periodic commits, stop and rebalance as Faust has them), except
        that the records are collected and handed to `App.on_batch` once per fetch."""
        app = self.app
        if app.on_batch is None:
            return await super()._drain_messages(fetcher)
        read_offset = self._read_offset
        try:
            while not (self.should_stop or fetcher.should_stop):
                batch: list[Message] = []
                await asyncio.sleep(0)  # getmany may return at once, over and over: let the loop run
                async for tp, message in self.getmany(timeout=1.0):
                    last = read_offset[tp]
                    if last is not None and message.offset < last:
                        continue  # read already (Faust drops these too)
                    if last and message.offset - last > 1 and app.topics.acks_enabled_for(message.topic):
                        await self._add_gap(tp, last + 1, message.offset)  # offsets that hold no record
                    if self._commit_every is not None and self._n_acked >= self._commit_every:
                        self._n_acked = 0
                        await self.commit()
                    batch.append(message)
                    read_offset[tp] = message.offset
                if batch and not self.should_stop:
                    await app.on_batch(batch)
        except asyncio.CancelledError:
            if not app.should_stop:
                raise
        except Exception as error:  # the consumer stopped under us included
            if app.should_stop or self.should_stop or fetcher.should_stop:
                log.info("input fetch ended while stopping: %s: %s", type(error).__name__, error)
                return  # the stop under way ends the worker (its deadline bounds it)
            log.exception("reading the input failed: the worker stops")  # input no longer read = a blind ward
            await app.crash(error)  # inputs stay unacknowledged: the next owner of the beds reads them


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class App(faust.App):
    """A Faust app on our transport; `dev_broker` says whether the Tansu workarounds apply.

    `before_assigned` runs first in a rebalance's assignment step, while the consumer waits in its rebalance
    callback: Faust's own `on_partitions_assigned` signal comes after its recovery service may already
    have resumed fetching, too late to refill bed state before new records arrive.
    """

    dev_broker: bool = False
    fetch_interval_s: float = 0.0  # the shortest time between two fetch requests for input (point 3 above)
    before_assigned: Callable[[set], Awaitable[None]] | None = None
    #: With a handler, every record goes to `on_batch`, a fetch's worth at a time, in offset order per partition
    #: (not to agents); the handler tracks and acknowledges them itself.
    on_batch: Callable[[list[Message]], Awaitable[None]] | None = None

    def _new_transport(self) -> Transport:
        return Transport(self.conf.broker_consumer, self)

    async def _on_partitions_assigned(self, assigned: set, generation_id: int = 0) -> None:
        if self.before_assigned is not None and not self.should_stop:
            try:
                await self.before_assigned(assigned)
            except Exception:  # a failed rebuild costs duplicate alerts at worst, never lost input
                logging.getLogger("streamer.worker").exception("rebuilding assigned partitions failed")
        await super()._on_partitions_assigned(assigned, generation_id)
