"""Delivery on a real Tansu broker: a worker killed mid-stream and restarted loses nothing and alerts nothing
twice; two workers in one group split the beds and one takes over when the other stops."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner
from worker_support import (  # noqa: F401 (fixture)
    assignments,
    bundle_spec,
    expected_windows,
    read_all,
    reference_alerts,
    wait_for_vitals,
)

from deploy.broker import DevBroker
from streamer.contract import Alert, AlertAction, Vitals, decode_record, encode
from streamer.kafka_io import make_producer
from streamer.replay.engine import replay
from streamer.replay.plan import ReplayConfig
from streamer.replay.scenarios import scenario_recording
from streamer.replay.sources import load_recording
from streamer.settings import KafkaSettings, TopicSettings
from streamer.worker.process import WorkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def published(kafka: KafkaSettings, topics: TopicSettings) -> tuple[list[Vitals], list[Alert]]:
    vitals = [decode_record(r.value, Vitals) for r in asyncio.run(read_all(kafka, topics.vitals))]
    alerts = [decode_record(r.value, Alert) for r in asyncio.run(read_all(kafka, topics.alerts))]
    return vitals, alerts  # type: ignore[return-value]


def assert_complete_once(vitals: list[Vitals], alerts: list[Alert], expected: dict[str, set[int]]) -> None:
    """Every expected window has its vitals; no alert state change was published twice."""
    got: dict[str, set[int]] = {}
    for v in vitals:
        got.setdefault(v.bed_id, set()).add(v.window_end_ns)
    missing = {bed: sorted(ends - got.get(bed, set())) for bed, ends in expected.items() if ends - got.get(bed, set())}
    extra = {bed: sorted(e - expected.get(bed, set())) for bed, e in got.items() if e - expected.get(bed, set())}
    assert not missing and not extra, f"windows missing {missing}, unexpected {extra}"
    twice = [k for k, n in Counter((a.alert_id, a.state.value, a.seq) for a in alerts).items() if n > 1]
    assert not twice, f"alerts published twice: {twice}"
    raised = Counter((a.bed_id, a.condition, a.onset_time_ns) for a in alerts if a.state.value == "raised")
    assert max(raised.values(), default=1) == 1


def test_crash_and_restart_loses_nothing_and_alerts_nothing_twice(
    broker: DevBroker, kafka: KafkaSettings, topics: TopicSettings, ci_bundle: Path, fixtures_dir: Path, tmp_path
) -> None:
    """SIGKILL mid-stream, then a fresh worker: every window's vitals and every alert an uninterrupted run
    derives from the same input arrive (latched alarms raised before the crash included), none twice."""
    recordings = [
        scenario_recording("brady", sample_rate_hz=250.0, leads=["II"]),
        scenario_recording("sinus-vt-sinus", sample_rate_hz=250.0, leads=["II"]),
        load_recording(fixtures_dir / "mitdb" / "101").select_leads(["MLII"]),
    ]
    config = ReplayConfig(beds=3, duration_s=60, speed=5, encoding="int16", chunk_ms=500, seed=3)
    expected = expected_windows(config, recordings, bundle_spec(ci_bundle))
    expected_alerts = {(a.alert_id, a.state.value, a.seq) for a in reference_alerts(ci_bundle, recordings, config)}
    assert expected_alerts, "the reference run raised nothing: the test would prove little"
    group = f"g-{topics.waveform}"
    log = tmp_path / "worker.log"

    async def scenario() -> None:
        first = WorkerProcess(kafka, topics, ci_bundle, log, group=group)
        await asyncio.to_thread(first.start)
        sending = asyncio.create_task(replay(recordings, config, kafka, topics.waveform))
        await asyncio.sleep(6.5)  # ~32 s of signal in: alarms raised, offsets committed, more in flight
        first.kill()
        await asyncio.sleep(1)
        second = WorkerProcess(kafka, topics, ci_bundle, log, group=group)
        await asyncio.to_thread(second.start)
        try:
            await sending
            await wait_for_vitals(kafka, topics.vitals, expected, timeout_s=60)
            replayed = re.search(r"committed=(\d+) replayed_chunks=(\d+)", second.log_text())
            assert replayed and int(replayed[1]) > 0 and int(replayed[2]) > 0, "restart did not rebuild"
        finally:
            second.stop()

    asyncio.run(scenario())
    vitals, alerts = published(kafka, topics)
    assert_complete_once(vitals, alerts, expected)
    got = {(a.alert_id, a.state.value, a.seq) for a in alerts if a.condition != "signal_lost"}
    assert got == expected_alerts


def test_two_workers_split_beds_and_take_over(
    broker: DevBroker, kafka: KafkaSettings, topics: TopicSettings, ci_bundle: Path, fixtures_dir: Path, tmp_path
) -> None:
    recording = load_recording(fixtures_dir / "mitdb" / "100").select_leads(["MLII"])
    config = ReplayConfig(beds=8, duration_s=50, speed=5, encoding="int16", chunk_ms=500, seed=5)
    expected = expected_windows(config, [recording], bundle_spec(ci_bundle))
    group = f"g-{topics.waveform}"

    async def scenario() -> None:
        a = WorkerProcess(kafka, topics, ci_bundle, tmp_path / "a.log", group=group)
        b = WorkerProcess(kafka, topics, ci_bundle, tmp_path / "b.log", group=group)
        await asyncio.gather(asyncio.to_thread(a.start), asyncio.to_thread(b.start))
        try:
            await asyncio.to_thread(a.wait_for, "new=[", 30)
            sending = asyncio.create_task(replay([recording], config, kafka, topics.waveform))
            await asyncio.sleep(4)
            held_a, held_b = assignments(a.log_text()), assignments(b.log_text())
            assert held_a and held_b and not held_a & held_b, (held_a, held_b)
            b.stop()  # graceful: leaves the group, a takes b's partitions over
            await sending
            await wait_for_vitals(kafka, topics.vitals, expected, timeout_s=60)
            assert assignments(a.log_text()) == set(range(topics.bed_partitions))
        finally:
            a.stop()
            b.stop()

    asyncio.run(scenario())
    assert_complete_once(*published(kafka, topics), expected)


def test_a_bed_silent_through_a_restart_keeps_its_alarms_acknowledgeable_and_its_return_clears_them(
    broker: DevBroker, kafka: KafkaSettings, topics: TopicSettings, ci_bundle: Path, fixtures_dir: Path, tmp_path
) -> None:
    """Found 2026-12-07: a bed whose signal_lost was raised and which stayed silent through a restart (or past the
    5-minute idle timeout) was unknown to the worker that took it up; a nurse's acknowledge of it was ignored and,
    once the bed streamed again, nothing cleared it: the station showed a monitored bed as lost for good. Now the
    worker takes up such a bed's open alarms from what was published (`Ledger.open_alerts`)."""
    recording = load_recording(fixtures_dir / "mitdb" / "100").select_leads(["MLII"])
    partitions = list(range(topics.bed_partitions))
    partition = DefaultPartitioner()(b"away-001", partitions, partitions)
    filler = next(p for p in (f"fill{i}" for i in range(1000))
                  if DefaultPartitioner()(f"{p}-001".encode(), partitions, partitions) == partition)  # fmt: skip
    group = f"g-{topics.waveform}"
    stream = ReplayConfig(bed_prefix="away", duration_s=15, speed=5, encoding="int16", chunk_ms=250)

    async def wait_for_lost(states: list[str], timeout_s: float = 30) -> list[Alert]:
        """The away bed's signal_lost records once their states are `states` (fails at the timeout)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            alerts = [decode_record(r.value, Alert) for r in await read_all(kafka, topics.alerts)]
            records = [a for a in alerts if a.bed_id == "away-001" and a.condition == "signal_lost"]
            if [a.state.value for a in records] == states:
                return records  # type: ignore[return-value]
            assert asyncio.get_running_loop().time() < deadline, [(a.state.value, a.seq) for a in records]
            await asyncio.sleep(1.0)

    async def scenario() -> None:
        first = WorkerProcess(kafka, topics, ci_bundle, tmp_path / "first.log", group=group)
        await asyncio.to_thread(first.start)
        try:
            await replay([recording], stream, kafka, topics.waveform)
            (raised,) = await wait_for_lost(["raised"])  # the bed went silent
            # 360 chunks of another bed on its partition: a restart's read-back (256 records first) ends before them
            fill = ReplayConfig(bed_prefix=filler, duration_s=90, speed=0, encoding="int16", chunk_ms=250)
            await replay([recording], fill, kafka, topics.waveform)
            await wait_for_vitals(kafka, topics.vitals, expected_windows(fill, [recording], bundle_spec(ci_bundle)), 60)
        finally:
            first.stop()  # a restart (a deploy): the offsets are committed
        second = WorkerProcess(kafka, topics, ci_bundle, tmp_path / "second.log", group=group)
        await asyncio.to_thread(second.start)
        try:
            action = AlertAction(bed_id="away-001", alert_id=raised.alert_id, action="acknowledge", user="rn-4")
            producer = make_producer(kafka)
            await producer.start()
            try:
                await producer.send_and_wait(topics.actions, encode(action), key=b"away-001")
            finally:
                await producer.stop()
            await wait_for_lost(["raised", "acknowledged"])
            back = stream.model_copy(update={"start_time_ns": time.time_ns()})  # the bed streams again
            await replay([recording], back, kafka, topics.waveform)
            records = await wait_for_lost(["raised", "acknowledged", "cleared"])
            assert {a.alert_id for a in records} == {raised.alert_id} and [a.seq for a in records] == [0, 1, 2]
        finally:
            second.stop()

    asyncio.run(scenario())
