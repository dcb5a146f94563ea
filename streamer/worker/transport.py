"""Faust's aiokafka transport with the two changes this product needs, in one place.

1. **Bed partitions go together** (every broker): the waveform topic and the alert-actions topic are keyed by
   bed with the same partition count, so partition *p* of both must land on the same worker — the one holding
   those beds' state. `BedPartitionAssignor` gives every topic's partition *p* to the same member (Faust's
   default round-robin only does so by accident of the member count).
2. **Dev broker only** (`KafkaSettings.dev_broker`): Tansu holds every fetch for the full `fetch_max_wait_ms`,
   and Faust's driver hard-codes 1500 ms in `AIOKafkaConsumerThread._create_worker_consumer`, which makes every
   hop cost ~0.5-2 s. We cap it at `DEV_FETCH_MAX_WAIT_MS` on the freshly created consumer, before it starts
   (aiokafka reads the attribute in `start()`). Production keeps Faust's value.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import aiokafka
import faust
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata
from faust.transport.drivers import aiokafka as faust_aiokafka

#: Tansu answers a fetch only after the full wait; 0 makes it answer nothing at all (broker notes, defect 2).
DEV_FETCH_MAX_WAIT_MS = 20


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


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
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


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class App(faust.App):
    """A Faust app on our transport; `dev_broker` says whether the Tansu workarounds apply.

    `before_assigned` runs first in a rebalance's assignment step, while the consumer waits in its rebalance
    callback: Faust's own `on_partitions_assigned` signal comes after its recovery service may already
    have resumed fetching, too late to refill bed state before new records arrive.
    """

    dev_broker: bool = False
    before_assigned: Callable[[set], Awaitable[None]] | None = None

    def _new_transport(self) -> Transport:
        return Transport(self.conf.broker_consumer, self)

    async def _on_partitions_assigned(self, assigned: set, generation_id: int = 0) -> None:
        if self.before_assigned is not None and not self.should_stop:
            try:
                await self.before_assigned(assigned)
            except Exception:  # a failed rebuild costs duplicate alerts at worst, never lost input
                logging.getLogger("streamer.worker").exception("rebuilding assigned partitions failed")
        await super()._on_partitions_assigned(assigned, generation_id)
