"""What the worker writes: alerts (through the ledger), vitals and dead letters, each send a future that resolves
once the broker has the record. Sends are queued, never awaited here (the caller decides what waits on them)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from faust.types import Message, TopicT

from streamer.contract import DeadLetter, encode
from streamer.metrics import WorkerMetrics
from streamer.worker.core import Outcome
from streamer.worker.delivery import Ledger

log = logging.getLogger("streamer.worker")


@dataclass
class Outputs:
    alerts: TopicT
    vitals: TopicT
    deadletter: TopicT
    ledger: Ledger
    metrics: WorkerMetrics

    async def publish(self, outcome: Outcome) -> list[asyncio.Future]:
        """Sends alerts (those the ledger admits) and vitals in order; returns the futures of the broker's acks."""
        sends = []
        for alert in outcome.alerts:
            admitted = self.ledger.admit(alert)
            if admitted is None:
                self.metrics.suppressed.inc()
                continue
            sends.append(await self.alerts.send(key=admitted.bed_id.encode(), value=encode(admitted)))
            self.ledger.record(admitted)  # a failed send crashes the worker; the restart reads the topic afresh
            self.metrics.alarms.labels(admitted.condition, admitted.priority.value, admitted.state.value).inc()
            log.info(
                "alert bed=%s condition=%s priority=%s state=%s alert_id=%s",
                admitted.bed_id,
                admitted.condition,
                admitted.priority.value,
                admitted.state.value,
                admitted.alert_id,
            )
        for vitals in outcome.vitals:
            sends.append(await self.vitals.send(key=vitals.bed_id.encode(), value=encode(vitals)))
        return sends

    async def publish_and_wait(self, outcome: Outcome) -> None:
        await asyncio.gather(*await self.publish(outcome))

    async def dead_letter(self, letter: DeadLetter, key: bytes | None) -> asyncio.Future:
        """Queues a dead letter; the future resolves once the broker has it. A dead letter always fits the topic
        (`DeadLetter.of` bounds it); one the broker still refuses stops the worker instead of hanging it."""
        future = await self.deadletter.send(key=key, value=encode(letter))
        self.metrics.dead_letters.inc()
        log.warning(
            "dead letter topic=%s partition=%s offset=%s reason=%s",
            letter.source_topic,
            letter.partition,
            letter.offset,
            letter.reason,
        )
        return future

    async def dead_letter_message(self, message: Message, reason: str, bed_id: str | None = None) -> asyncio.Future:
        """An input the worker could not handle, as it arrived (bounded), with its origin and why."""
        letter = DeadLetter.of(
            reason,
            message.value,
            key=message.key,
            bed_id=bed_id,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )
        return await self.dead_letter(letter, message.key)

    async def settings_dead_letter(self, letter: DeadLetter) -> None:
        """A bed-settings record the follower refused, written before the follower reads on."""
        await (await self.deadletter.send(key=letter.original_key, value=encode(letter)))
        self.metrics.dead_letters.inc()
