"""ECG through the HL7 gateway into a real worker: it raises what it raises on the direct Kafka replay.

The synthetic sinus -> VT scenario (VT from 30 s), so there is an alarm to compare; MIT-BIH 100's sample-exact
passage through the gateway is tests/test_hl7_gateway.py's."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from worker_support import bundle_spec, expected_windows, read_all, reference_alerts, wait_for_vitals

from streamer.contract import Alert, decode_record
from streamer.demo import DEFAULT_BUNDLE
from streamer.hl7.gateway import WaveformGateway
from streamer.hl7.metrics import Hl7Metrics
from streamer.hl7.mllp import MllpLink
from streamer.hl7.replay import send_plan_hl7
from streamer.replay.engine import ReplaySummary
from streamer.replay.plan import ReplayConfig, plan_replay
from streamer.replay.scenarios import scenario_recording
from streamer.settings import Hl7Settings, KafkaSettings, TopicSettings
from streamer.worker.process import WorkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]


async def test_worker_on_gateway_chunks_matches_the_direct_replay(
    kafka: KafkaSettings, topics: TopicSettings, tmp_path: Path
) -> None:
    if not (DEFAULT_BUNDLE / "manifest.json").exists():
        pytest.skip("needs the shipped default bundle (models/bundles/default)")
    recordings = [scenario_recording("sinus-vt-sinus", sample_rate_hz=250.0, leads=["II"])]
    start_ns = time.time_ns() // 1_000_000_000 * 1_000_000_000  # whole second: HL7 times carry 100 µs
    config = ReplayConfig(duration_s=40, speed=6, chunk_ms=500, encoding="int16", start_time_ns=start_ns)
    expected = expected_windows(config, recordings, bundle_spec(DEFAULT_BUNDLE))  # what the Kafka replay gives
    expected_alerts = {(a.alert_id, a.state.value, a.seq) for a in reference_alerts(DEFAULT_BUNDLE, recordings, config)}
    assert any(state == "raised" for _, state, _ in expected_alerts), "nothing to compare"
    worker = WorkerProcess(kafka, topics, DEFAULT_BUNDLE, tmp_path / "worker.log", group=f"g-{uuid.uuid4().hex[:8]}")
    await asyncio.to_thread(worker.start)
    gateway = WaveformGateway(kafka, topics, Hl7Settings(), Hl7Metrics("enecg_hl7_gateway"))
    port = await gateway.start("127.0.0.1", 0)
    try:
        summary = ReplaySummary(topic="hl7", beds=1, records=["sinus-vt-sinus"], encoding="hl7-int16", speed=5)
        codes = await send_plan_hl7(plan_replay(recordings, config), MllpLink("127.0.0.1", port), summary)
        assert codes == {"AA": 80}
        vitals = await wait_for_vitals(kafka, topics.vitals, expected, timeout_s=90)
    finally:
        await gateway.stop()
        await asyncio.to_thread(worker.stop)
    assert {(v.bed_id, v.window_end_ns) for v in vitals} == {(b, e) for b, ends in expected.items() for e in ends}
    alerts = [decode_record(r.value, Alert) for r in await read_all(kafka, topics.alerts)]
    got = {(a.alert_id, a.state.value, a.seq) for a in alerts if a.condition != "signal_lost"}  # type: ignore[union-attr]
    assert got == expected_alerts
    print(f"\n{len(vitals)} windows and {len(got)} alert records, as on the direct replay")
