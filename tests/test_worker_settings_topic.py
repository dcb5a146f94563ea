"""A worker whose bed-settings topic is missing still watches every bed (judged by the default settings), and
takes the nurses' settings once the topic exists: settings are never a reason to blind a bed."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from worker_support import read_all

from deploy.broker import DevBroker, create_topics
from streamer.contract import BedSettings, Vitals, decode_record, encode
from streamer.replay.engine import replay
from streamer.replay.plan import ReplayConfig
from streamer.replay.sources import load_recording
from streamer.settings import KafkaSettings, TopicSettings
from streamer.worker.process import WorkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]


async def _vitals(kafka: KafkaSettings, topic: str) -> list[Vitals]:
    return [v for r in await read_all(kafka, topic) if isinstance(v := decode_record(r.value, Vitals), Vitals)]


async def _wait_for(kafka: KafkaSettings, topic: str, done, timeout_s: float) -> list[Vitals]:  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        vitals = await _vitals(kafka, topic)
        if done(vitals) or asyncio.get_running_loop().time() > deadline:
            return vitals
        await asyncio.sleep(1.0)


def test_missing_settings_topic_never_blinds_a_bed(
    broker: DevBroker, kafka: KafkaSettings, ci_bundle: Path, fixtures_dir: Path, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    topics = TopicSettings(
        waveform=f"m-{suffix}.waveform", alerts=f"m-{suffix}.alerts", vitals=f"m-{suffix}.vitals",
        actions=f"m-{suffix}.actions", deadletter=f"m-{suffix}.deadletter", bed_settings=f"m-{suffix}.bed-settings",
        audit=f"m-{suffix}.audit", bed_partitions=2,
    )  # fmt: skip
    settings_spec = [s for s in topics.specs() if s.name == topics.bed_settings]
    asyncio.run(create_topics(kafka, [s for s in topics.specs() if s.name != topics.bed_settings]))
    recording = load_recording(fixtures_dir / "mitdb" / "100").select_leads(["MLII"])
    log = tmp_path / "worker.log"

    async def send_settings() -> None:
        producer = AIOKafkaProducer(**kafka.aiokafka_kwargs())
        await producer.start()
        try:
            record = BedSettings(bed_id="bed-001", hr_low_bpm=40, hr_high_bpm=100, user="nurse-a")
            await producer.send_and_wait(topics.bed_settings, key=record.key.encode(), value=encode(record))
        finally:
            await producer.stop()

    with WorkerProcess(kafka, topics, ci_bundle, log, group=f"g-{suffix}") as worker:
        first = ReplayConfig(beds=1, duration_s=20, speed=0, chunk_ms=500, encoding="int16")
        asyncio.run(replay([recording], first, kafka, topics.waveform))
        vitals = asyncio.run(_wait_for(kafka, topics.vitals, lambda v: len(v) >= 5, timeout_s=60))
        assert len(vitals) >= 5 and worker.alive, worker.log_text()[-2000:]  # watched, with the defaults
        assert all(v.settings is None or v.settings.source == "default" for v in vitals)
        assert "bed settings not read before serving" in worker.log_text()

        asyncio.run(create_topics(kafka, settings_spec))  # operations fix the deployment
        asyncio.run(send_settings())
        worker.wait_for("bed settings in force key=bed-001", timeout_s=30)  # the follower's retry read the new topic
        second = first.model_copy(update={"start_time_ns": first.start_time_ns + 20 * 10**9, "duration_s": 40})
        asyncio.run(replay([recording], second, kafka, topics.waveform))

        def taken(vitals: list[Vitals]) -> bool:
            return any(v.settings is not None and v.settings.hr_high_bpm == 100 for v in vitals)

        vitals = asyncio.run(_wait_for(kafka, topics.vitals, taken, timeout_s=60))
        assert worker.alive, worker.log_text()[-2000:]
    assert taken(vitals), "the follower never read the settings topic once it existed"
    newest = max(vitals, key=lambda v: v.window_end_ns)
    assert newest.settings is not None and newest.settings.source == "bed" and newest.settings.changed_by == "nurse-a"
