"""The Faust app: the whole pipeline declared top to bottom in `create_app`.

    waveform topic(s) ──decode──bad──► dead-letter topic (reason, original bytes, topic/partition/offset)
        │ good
        ▼
    per-bed assembler → windows → cross-bed micro-batcher      (`ingest`, one fetch at a time, manual acks)
        ▼ flush at max batch or max delay                         (task `infer`)
    runtime.predict in a thread → alarm engine per bed → ledger ──► alerts topic, vitals topic (key = bed)
    actions topic ──► alarm engine (acknowledge / pause audio)   (`ingest` too, fetched with the waveforms)
    bed-settings topic (compacted, all partitions) ──► settings book the engine reads per window  (task `settings`)
    partitions revoked → drop those beds' state; assigned → rebuild them from the input (rebuild.py)

Settings for the Tansu dev broker (short session, heartbeat, fetch wait) apply only when
`KafkaSettings.dev_broker` is true; elsewhere Faust's and Kafka's defaults stand. No transactions, no
exactly-once, no changelog tables: bed state is in memory and rebuilt from the input topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from aiokafka import TopicPartition
from faust.types import Message

from streamer.contract import AlertAction, DeadLetter, decode_record, decode_waveform, encode
from streamer.metrics import WorkerMetrics
from streamer.settings import KafkaSettings, TopicSettings
from streamer.worker.bed_settings import SettingsFollower
from streamer.worker.config import YIELD_EVERY, WorkerConfig
from streamer.worker.core import Batch, Core, Outcome
from streamer.worker.deadline import LoopWatch, exit_now
from streamer.worker.delivery import AckTracker, Ledger
from streamer.worker.rebuild import PartitionRebuilder
from streamer.worker.transport import App

log = logging.getLogger("streamer.worker")
TICK_S = 0.5  # timer work (stalled beds, held chunks) at least this often
MAX_BATCHES_IN_FLIGHT = 8  # batches whose outputs may await the broker's ack while the next one runs


def faust_settings(kafka: KafkaSettings, config: WorkerConfig) -> dict[str, Any]:
    """Faust app settings: security from KafkaSettings, Tansu workarounds only on the dev broker."""
    settings: dict[str, Any] = {
        "broker": [f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(",")],
        "broker_client_id": kafka.client_id,
        "key_serializer": "raw",
        "value_serializer": "raw",
        "topic_disable_leader": True,  # no leader topic: nothing here needs a leader
        "topic_allow_declare": False,  # topics are created by operations (or DevBroker) with their partitions
        "web_enabled": False,  # metrics are served by prometheus_client on --metrics-port
        "datadir": str(config.data_dir or tempfile.mkdtemp(prefix="enecg-worker-")),
        "consumer_auto_offset_reset": config.offset_reset or ("earliest" if kafka.dev_broker else "latest"),
    }
    if (credentials := kafka.faust_credentials()) is not None:
        settings["broker_credentials"] = credentials
    if kafka.dev_broker:
        # Tansu holds JoinGroup for session_timeout / 2 and a fresh group's first member never leaves cleanly:
        # a 6 s session makes a worker ready in ~4.5 s instead of ~31 s (broker notes, defect 3). The fetch
        # wait is capped in streamer.worker.transport.
        # Its fetch cost grows with the number of separate writes (defect 6): let the producer batch a little.
        settings.update(broker_session_timeout=6.0, broker_heartbeat_interval=1.0, producer_linger_ms=5)
    return settings


def create_app(
    kafka: KafkaSettings, topics: TopicSettings, config: WorkerConfig, core: Core, metrics: WorkerMetrics
) -> faust.App:
    """The worker app; nothing connects until a Faust worker starts it."""
    app = App(config.group, **faust_settings(kafka, config))
    app.dev_broker = kafka.dev_broker
    app.fetch_interval_s = config.fetch_interval_ms / 1000
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    if config.waveform_pattern:
        waveform = app.topic(pattern=config.waveform_pattern, **raw)
    else:
        waveform = app.topic(*(config.waveform_topics or (topics.waveform,)), **raw)
    actions = app.topic(topics.actions, **raw)
    alerts_out = app.topic(topics.alerts, **raw)
    vitals_out = app.topic(topics.vitals, **raw)
    deadletter = app.topic(topics.deadletter, **raw)

    ledger = Ledger()
    acks = AckTracker(lambda message: message.ack(app.consumer))
    wake = asyncio.Event()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enecg-infer")

    def on_broker(future: asyncio.Future, message: Message) -> None:
        if future.cancelled() or future.exception() is not None:  # the broker refused them: stop, loudly
            error = future.exception() if not future.cancelled() else RuntimeError("send cancelled")
            log.error("outputs could not be written (%s): the worker stops, its input stays unacknowledged", error)
            asyncio.ensure_future(app.crash(error))  # type: ignore[arg-type]
            return
        acks.window_done(message)

    def hold(message: Message, n_windows: int, sends: list[asyncio.Future]) -> None:
        """`message` is acknowledged, in offset order, once the windows it completed and its own `sends` (dead
        letter, alerts) are on the broker. Nothing is awaited here: a flood of junk or of actions must not hold
        the fetch loop, and with it every bed, behind one broker round trip per message."""
        acks.hold(message, n_windows + (1 if sends else 0), (message.topic, message.partition))
        if sends:
            asyncio.gather(*sends).add_done_callback(lambda done: on_broker(done, message))

    async def dead_letter(letter: DeadLetter, key: bytes | None) -> asyncio.Future:
        """Queues a dead letter; the future resolves once the broker has it. A dead letter always fits the topic
        (`DeadLetter.of` bounds it); one the broker still refuses stops the worker instead of hanging it."""
        future = await deadletter.send(key=key, value=encode(letter))
        metrics.dead_letters.inc()
        log.warning(
            "dead letter topic=%s partition=%s offset=%s reason=%s",
            letter.source_topic,
            letter.partition,
            letter.offset,
            letter.reason,
        )
        return future

    async def settings_dead_letter(letter: DeadLetter) -> None:
        await (await deadletter.send(key=letter.original_key, value=encode(letter)))
        metrics.dead_letters.inc()

    held: set[TopicPartition] = set()  # input partitions whose beds' state this worker keeps
    follower = SettingsFollower(
        kafka, topics.bed_settings, core.alarms.book, settings_dead_letter,
        lambda partition: any(tp.partition == partition for tp in held),
    )  # fmt: skip

    async def dead_letter_message(message: Message, reason: str, bed_id: str | None = None) -> asyncio.Future:
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
        return await dead_letter(letter, message.key)

    async def publish(outcome: Outcome) -> list[asyncio.Future]:
        """Sends alerts (through the ledger) and vitals in order; returns the futures of the broker's acks."""
        sends = []
        for alert in outcome.alerts:
            admitted = ledger.admit(alert)
            if admitted is None:
                metrics.suppressed.inc()
                continue
            sends.append(await alerts_out.send(key=admitted.bed_id.encode(), value=encode(admitted)))
            ledger.record(admitted)  # a failed send crashes the worker; the restart reads the topic afresh
            metrics.alarms.labels(admitted.condition, admitted.priority.value, admitted.state.value).inc()
            log.info(
                "alert bed=%s condition=%s priority=%s state=%s alert_id=%s",
                admitted.bed_id,
                admitted.condition,
                admitted.priority.value,
                admitted.state.value,
                admitted.alert_id,
            )
        for vitals in outcome.vitals:
            sends.append(await vitals_out.send(key=vitals.bed_id.encode(), value=encode(vitals)))
        return sends

    async def publish_and_wait(outcome: Outcome) -> None:
        await asyncio.gather(*await publish(outcome))

    in_flight = asyncio.Semaphore(MAX_BATCHES_IN_FLIGHT)
    settling: set[asyncio.Task] = set()

    async def settle(batch: Batch, sends: list[asyncio.Future]) -> None:
        """Once the broker has a batch's outputs: acknowledge the inputs that completed its windows."""
        try:
            await asyncio.gather(*sends)
            now = time.time_ns()
            for window in batch.windows:
                metrics.lag_ms.observe((now - window.arrival_ns) / 1e6)
            for token in batch.tokens + batch.skipped_tokens:
                acks.window_done(token)
        except Exception as error:  # the broker refused outputs: stop, inputs stay unacknowledged
            await app.crash(error)
        finally:
            in_flight.release()

    def backlog(message: Message) -> bool:
        """Messages wait on this message's partition after it (the high watermark of the last fetch)."""
        try:
            highwater = app.consumer.highwater(message.tp)
        except Exception:  # not assigned any more (a rebalance): no claim either way
            return False
        return highwater is not None and message.offset + 1 < highwater

    def adopt(bed_id: str) -> bool:
        """A bed of this worker's partitions whose state it does not hold (forgotten after its idle timeout, or
        silent through a restart) takes up its alarms published and not yet cleared: its return clears
        signal_lost, a nurse's acknowledge applies (taken up afresh, those stayed raised on the station for good).
        Whether the engine now holds alarms of the bed."""
        if core.holds(bed_id):
            return True
        records = ledger.open_alerts(bed_id)
        core.alarms.restore(records)
        return bool(records)

    # ---------------------------------------------------------------------------------- the pipeline

    async def act(message: Message) -> list[asyncio.Future]:
        """An acknowledge / pause audio from a dashboard, applied to a bed of this worker's partitions (the
        alerts' sends), or dead-lettered when malformed."""
        try:
            action = decode_record(message.value, AlertAction)
        except ValueError as error:
            return [await dead_letter_message(message, str(error))]
        assert isinstance(action, AlertAction)
        if not adopt(action.bed_id):
            return []
        try:
            return await publish(Outcome(alerts=core.act(action)))
        finally:
            if not core.holds(action.bed_id):  # a silent bed: the next adoption reads its alarms again
                core.alarms.forget(action.bed_id)

    async def ingest(messages: list[Message]) -> None:
        """One fetch of input: actions -> alarm engine; waveforms: decode -> dead letters | assembler -> windows ->
        batcher. Each record is tracked like a Faust stream's event and acknowledged once its outputs are on the
        broker (delivery.py); no record waits for the broker here."""
        metrics.fetch_records.observe(len(messages))
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
            if message.topic == topics.actions:
                hold(message, 0, await act(message))
                continue
            where = (message.topic, message.partition)
            core.position(*where, message.offset < last[message.tp] or backlog(message))
            item = decode_waveform(
                message.value, key=message.key, topic=message.topic, partition=message.partition, offset=message.offset
            )
            if isinstance(item, DeadLetter):
                if item.bed_id is not None or (
                    message.key is not None and core.holds(message.key.decode(errors="replace"))
                ):
                    bed_id = item.bed_id or message.key.decode()  # type: ignore[union-attr]
                    adopt(bed_id)
                    core.refused(bed_id, item.reason, *where)
                hold(message, 0, [await dead_letter(item, message.key)])
                continue
            sent_ns = round(message.timestamp * 1e9) if message.timestamp else None
            try:
                adopt(item.bed_id)
                n_windows, outcome = core.ingest(item, message, *where, sent_ns)
            except Exception as error:  # a bug on one message must neither stop the worker nor lose the message
                log.exception("chunk failed bed=%s seq=%d", item.bed_id, item.seq)
                reason = f"worker error: {type(error).__name__}: {error}"
                hold(message, 0, [await dead_letter_message(message, reason, item.bed_id)])
                continue
            sends = await publish(outcome) if outcome.alerts else []  # the alerts of stream events (gaps, leads)
            if outcome.refused is not None:
                sends.append(await dead_letter_message(message, outcome.refused, item.bed_id))
            hold(message, n_windows, sends)
            if n_windows:
                wake.set()

    for topic in (waveform, actions):  # subscribed like agents' topics, read by `ingest` (transport.py, point 2)
        app.topics.add(topic)
    app.on_batch = ingest

    async def conclude(batch: Batch, outputs: asyncio.Future, submitted: float) -> None:
        """The alarm engine over a batch the model has run on; its outputs reach the broker in the background.
        A model call not back within the model timeout of its submission ends the process (`exit_now`): a hung
        runtime or device would leave every bed of this worker unwatched while it still holds them."""
        left_s = submitted + config.model_timeout_s - time.monotonic()
        try:
            result = await asyncio.wait_for(asyncio.shield(outputs), max(0.0, left_s))
        except TimeoutError:
            exit_now(
                f"a model call of {len(batch.windows)} windows has not returned within {config.model_timeout_s:g} s "
                "(a hung runtime or device): exiting so that the group moves this worker's beds to another"
            )
        if skipped := [w for w in batch.skipped if w is not None]:
            log.warning(
                "behind: %d windows of %d beds waited a hop and were skipped (every other window analysed); the "
                "model serves fewer beds than this worker holds",
                len(skipped), len({w.bed_id for w in skipped}),
            )  # fmt: skip
        sends = await publish(core.conclude(batch, result))
        await in_flight.acquire()  # the next batch runs while this one's outputs reach the broker
        task = asyncio.ensure_future(settle(batch, sends))
        settling.add(task)
        task.add_done_callback(settling.discard)

    @app.task
    async def infer() -> None:
        """The micro-batcher's flush loop: a batch at max size or max delay, the model in a thread; the alarm
        engine concludes each batch while the model already runs the next one (batches conclude in order)."""
        loop = asyncio.get_running_loop()
        next_tick = quiet_until = time.monotonic()
        running: tuple[Batch, asyncio.Future, float] | None = None  # the batch whose model call is under way
        while True:  # also while Faust stops: it waits for in-flight inputs to be acknowledged, then cancels us
            if app.rebalancing or app.should_stop:  # consumption pauses: silence is ours, not the beds'
                quiet_until = time.monotonic() + core.assembler.settings.stall_s + TICK_S
            if time.monotonic() >= max(next_tick, quiet_until):
                await publish_and_wait(core.tick())
                next_tick = time.monotonic() + TICK_S
            batch = core.take_batch()
            if batch is None and running is None:
                wait = core.seconds_to_deadline()
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), min(TICK_S, wait if wait is not None else TICK_S))
                continue
            started = None
            if batch is not None:
                started = (batch, loop.run_in_executor(executor, core.predict, batch), time.monotonic())
            if running is not None:
                await conclude(*running)
            running = started

    @app.task
    async def watch_loop() -> None:
        """A blocked event loop watches no bed: past the loop timeout the worker exits (`LoopWatch`)."""
        await LoopWatch(config.loop_timeout_s).run()

    @app.task
    async def follow_settings() -> None:
        """Follows the bed-settings topic once the first assignment has read it whole."""
        try:
            await follower.follow()
        finally:
            await follower.stop()

    app.before_assigned = PartitionRebuilder(
        kafka, topics, config, core, ledger, follower, metrics, publish_and_wait, wake.set, held
    )
    return app
