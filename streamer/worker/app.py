"""The Faust app: the whole pipeline wired in `create_app`.

    waveform topic(s) ──decode──bad──► dead-letter topic (reason, original bytes, topic/partition/offset)
        │ good
        ▼
    per-bed assembler → windows → cross-bed micro-batcher      (intake.py, one fetch at a time, manual acks)
        ▼ flush at max batch or max delay                         (inference.py, a task)
    runtime.predict in a thread → alarm engine per bed → ledger ──► alerts topic, vitals topic (key = bed)
                                                                                               (outputs.py)
    actions topic ──► alarm engine (acknowledge / pause audio)   (intake.py too, fetched with the waveforms)
    bed-settings topic (compacted, all partitions) ──► settings book the engine reads per window  (bed_settings.py)
    partitions revoked → drop those beds' state; assigned → rebuild them from the input (rebuild.py)

Settings for the Tansu dev broker (short session, heartbeat, fetch wait) apply only when
`KafkaSettings.dev_broker` is true; elsewhere Faust's and Kafka's defaults stand. No transactions, no
exactly-once, no changelog tables: bed state is in memory and rebuilt from the input topic.
"""

from __future__ import annotations

import asyncio
import tempfile
from typing import Any

import faust
from aiokafka import TopicPartition

from streamer.metrics import WorkerMetrics
from streamer.settings import KafkaSettings, TopicSettings
from streamer.worker.bed_settings import SettingsFollower
from streamer.worker.config import WorkerConfig
from streamer.worker.core import Core
from streamer.worker.deadline import LoopWatch
from streamer.worker.delivery import AckTracker, Ledger
from streamer.worker.inference import InferenceLoop
from streamer.worker.intake import Intake
from streamer.worker.outputs import Outputs
from streamer.worker.rebuild import PartitionRebuilder
from streamer.worker.transport import App


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
    for topic in (waveform, actions):  # subscribed like agents' topics, read by `Intake` (transport.py, point 2)
        app.topics.add(topic)

    ledger = Ledger()
    outputs = Outputs(
        app.topic(topics.alerts, **raw), app.topic(topics.vitals, **raw), app.topic(topics.deadletter, **raw),
        ledger, metrics,
    )  # fmt: skip
    acks = AckTracker(lambda message: message.ack(app.consumer))
    wake = asyncio.Event()  # windows wait for the flush loop
    app.on_batch = Intake(app, core, outputs, acks, metrics, topics.actions, wake)
    app.task(InferenceLoop(app, core, config, outputs, acks, metrics, wake).run)

    held: set[TopicPartition] = set()  # input partitions whose beds' state this worker keeps
    follower = SettingsFollower(
        kafka, topics.bed_settings, core.alarms.book, outputs.settings_dead_letter,
        lambda partition: any(tp.partition == partition for tp in held),
    )  # fmt: skip
    app.before_assigned = PartitionRebuilder(
        kafka, topics, config, core, ledger, follower, metrics, outputs.publish_and_wait, wake.set, held
    )

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

    return app
