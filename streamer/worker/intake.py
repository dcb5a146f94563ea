"""The worker's input, one fetch at a time (`App.on_batch`): actions -> alarm engine; waveforms: decode -> dead
letters | assembler -> windows -> batcher. Each record is tracked like a Faust stream's event and acknowledged, in
offset order, once its outputs are on the broker (delivery.py); no record waits for the broker here."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from faust.types import Message

from streamer.contract import AlertAction, DeadLetter, decode_record, decode_waveform
from streamer.metrics import WorkerMetrics
from streamer.worker.config import YIELD_EVERY
from streamer.worker.core import Core, Outcome
from streamer.worker.delivery import AckTracker
from streamer.worker.outputs import Outputs
from streamer.worker.transport import App

log = logging.getLogger("streamer.worker")


@dataclass
class Intake:
    app: App
    core: Core
    outputs: Outputs
    acks: AckTracker
    metrics: WorkerMetrics
    actions_topic: str
    wake: asyncio.Event  # set when windows wait for the flush loop

    async def __call__(self, messages: list[Message]) -> None:
        """One fetch of input, handled in order."""
        app, core = self.app, self.core
        self.metrics.fetch_records.observe(len(messages))
        last = {message.tp: message.offset for message in messages}  # each partition's last record fetched
        now = time.monotonic()
        for tp in last:  # what a stream's sensor notes: Faust's "stream stopped processing" check reads it
            app.monitor.stream_inbound_time[tp] = now
        for handled, message in enumerate(messages, 1):
            if handled % YIELD_EVERY == 0:  # a burst on one partition must not hold the flush loop back
                await asyncio.sleep(0)
            if message.generation_id != app.consumer_generation_id or not app.flow_control.is_active():
                continue  # fetched before a rebalance: its partition resumes from the committed offset
            app.consumer.track_message(message)
            if message.topic == self.actions_topic:
                self.hold(message, 0, await self.act(message))
                continue
            where = (message.topic, message.partition)
            core.position(*where, message.offset < last[message.tp] or self.backlog(message))
            item = decode_waveform(
                message.value, key=message.key, topic=message.topic, partition=message.partition, offset=message.offset
            )
            if isinstance(item, DeadLetter):
                if item.bed_id is not None or (
                    message.key is not None and core.holds(message.key.decode(errors="replace"))
                ):
                    bed_id = item.bed_id or message.key.decode()  # type: ignore[union-attr]
                    self.adopt(bed_id)
                    core.refused(bed_id, item.reason, *where)
                self.hold(message, 0, [await self.outputs.dead_letter(item, message.key)])
                continue
            sent_ns = round(message.timestamp * 1e9) if message.timestamp else None
            try:
                self.adopt(item.bed_id)
                n_windows, outcome = core.ingest(item, message, *where, sent_ns)
            except Exception as error:  # a bug on one message must neither stop the worker nor lose the message
                log.exception("chunk failed bed=%s seq=%d", item.bed_id, item.seq)
                reason = f"worker error: {type(error).__name__}: {error}"
                self.hold(message, 0, [await self.outputs.dead_letter_message(message, reason, item.bed_id)])
                continue
            sends = await self.outputs.publish(outcome) if outcome.alerts else []  # stream events' (gaps, leads)
            if outcome.refused is not None:
                sends.append(await self.outputs.dead_letter_message(message, outcome.refused, item.bed_id))
            self.hold(message, n_windows, sends)
            if n_windows:
                self.wake.set()

    async def act(self, message: Message) -> list[asyncio.Future]:
        """An acknowledge / pause audio from a dashboard, applied to a bed of this worker's partitions (the
        alerts' sends), or dead-lettered when malformed."""
        try:
            action = decode_record(message.value, AlertAction)
        except ValueError as error:
            return [await self.outputs.dead_letter_message(message, str(error))]
        assert isinstance(action, AlertAction)
        if not self.adopt(action.bed_id):
            return []
        try:
            return await self.outputs.publish(Outcome(alerts=self.core.act(action)))
        finally:
            if not self.core.holds(action.bed_id):  # a silent bed: the next adoption reads its alarms again
                self.core.alarms.forget(action.bed_id)

    def hold(self, message: Message, n_windows: int, sends: list[asyncio.Future]) -> None:
        """`message` is acknowledged, in offset order, once the windows it completed and its own `sends` (dead
        letter, alerts) are on the broker. Nothing is awaited here: a flood of junk or of actions must not hold
        the fetch loop, and with it every bed, behind one broker round trip per message."""
        self.acks.hold(message, n_windows + (1 if sends else 0), (message.topic, message.partition))
        if sends:
            asyncio.gather(*sends).add_done_callback(lambda done: self._on_broker(done, message))

    def _on_broker(self, future: asyncio.Future, message: Message) -> None:
        if future.cancelled() or future.exception() is not None:  # the broker refused them: stop, loudly
            error = future.exception() if not future.cancelled() else RuntimeError("send cancelled")
            log.error("outputs could not be written (%s): the worker stops, its input stays unacknowledged", error)
            asyncio.ensure_future(self.app.crash(error))  # type: ignore[arg-type]
            return
        self.acks.window_done(message)

    def backlog(self, message: Message) -> bool:
        """Messages wait on this message's partition after it (the high watermark of the last fetch)."""
        try:
            highwater = self.app.consumer.highwater(message.tp)
        except Exception:  # not assigned any more (a rebalance): no claim either way
            return False
        return highwater is not None and message.offset + 1 < highwater

    def adopt(self, bed_id: str) -> bool:
        """A bed of this worker's partitions whose state it does not hold (forgotten after its idle timeout, or
        silent through a restart) takes up its alarms published and not yet cleared: its return clears
        signal_lost, a nurse's acknowledge applies (taken up afresh, those stayed raised on the station for good).
        Whether the engine now holds alarms of the bed."""
        if self.core.holds(bed_id):
            return True
        records = self.outputs.ledger.open_alerts(bed_id)
        self.core.alarms.restore(records)
        return bool(records)
