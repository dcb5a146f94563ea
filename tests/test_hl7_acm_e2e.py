"""The whole alarm path into a hospital alarm manager: a replayed VT scenario -> Tansu -> a real worker (the
shipped default bundle: the ci bundle does not name VT) -> `enecg acm` -> a real MLLP peer, and a nurse's
acknowledge on the actions topic coming back out as an ORU^R40 update with the inactivation state."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import hl7
import pytest
from hl7_support import Peer, acm_settings, obx_value, running_acm, wait_until

from streamer.contract import AlertAction, encode
from streamer.demo import DEFAULT_BUNDLE
from streamer.hl7.messages import parse_time
from streamer.kafka_io import make_producer
from streamer.replay.engine import replay
from streamer.replay.plan import ReplayConfig
from streamer.replay.scenarios import scenario_recording
from streamer.settings import KafkaSettings, TopicSettings
from streamer.worker.process import WorkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]
BED = "ICU-001"


def vt(message: hl7.Message) -> bool:
    return "VENTRICULAR_TACHYCARDIA" in str(message.segments("OBX")[0](5))


async def test_vt_reaches_the_alarm_manager_and_the_acknowledge_follows(
    kafka: KafkaSettings, topics: TopicSettings, tmp_path: Path
) -> None:
    if not (DEFAULT_BUNDLE / "manifest.json").exists():
        pytest.skip("needs the shipped default bundle (models/bundles/default)")
    peer = await Peer().start()
    config = ReplayConfig(beds=1, speed=5, chunk_ms=500, encoding="int16", bed_prefix="ICU", unit="ICU")
    recording = scenario_recording("sinus-vt-sinus", sample_rate_hz=250.0, leads=["II"])
    worker = WorkerProcess(kafka, topics, DEFAULT_BUNDLE, tmp_path / "worker.log", group=f"g-{uuid.uuid4().hex[:8]}")
    await asyncio.to_thread(worker.start)
    settings = acm_settings(peer, f"acm-{uuid.uuid4().hex[:8]}", tmp_path / "acm.journal")
    try:
        async with running_acm(kafka, topics, settings, peer.port):
            sending = asyncio.create_task(replay([recording], config, kafka, topics.waveform))
            await wait_until(lambda: any(vt(m) for m in peer.accepted), 60, "VT start at the alarm manager")
            start = next(m for m in peer.accepted if vt(m))
            alert_id = str(start.segment("OBR")(3)).split("^")[0]

            producer = make_producer(kafka)
            await producer.start()
            action = AlertAction(bed_id=BED, alert_id=alert_id, action="acknowledge", user="rn.okafor")
            await producer.send_and_wait(topics.actions, encode(action), key=BED.encode())
            await producer.stop()

            def phases() -> list[tuple[str, str, str]]:
                return [
                    (obx_value(m, "MDC_ATTR_EVENT_PHASE"), obx_value(m, "MDC_ATTR_ALARM_STATE"),
                     obx_value(m, "MDC_ATTR_ALARM_INACTIVATION_STATE"))
                    for m in peer.accepted if vt(m)
                ]  # fmt: skip

            await wait_until(lambda: phases()[-1][0] == "end", 60, f"VT end (so far {phases()})")
            await sending
    finally:
        await asyncio.to_thread(worker.stop)
        await peer.stop()

    got = phases()
    print(f"\nVT at the alarm manager: {got}")
    assert got[0] == ("start", "active", "enabled")
    assert ("update", "active", "acknowledged") in got  # the nurse's acknowledge, from the actions topic
    assert got[-1] == ("end", "inactive", "acknowledged")
    assert got.index(("update", "active", "acknowledged")) < len(got) - 1

    # Every message parses with the library and carries the ACM fields.
    for message in (m for m in peer.accepted if vt(m)):
        msh, obr = message.segment("MSH"), message.segment("OBR")
        assert str(msh(9)) == "ORU^R40^ORU_R40" and str(msh(21)).startswith("IHE_PCD_ACM_001")
        assert str(message.segment("PV1")(3)) == f"ICU^^{BED}"
        assert str(obr(3)) == f"{alert_id}^ENECG"
        identity = message.segments("OBX")[0]
        assert str(identity(3)) == "196616^MDC_EVT_ALARM^MDC"
        assert str(identity(8)) == "PH~SP"
        assert obx_value(message, "MDC_ATTR_ALARM_PRIORITY") == "PH"
        assert obx_value(message, "MDC_ATTR_ALERT_TYPE") == "SP"
        hr = next(o for o in message.segments("OBX") if "MDC_ECG_HEART_RATE" in str(o(3)))
        assert float(str(hr(5))) > 0 and str(hr(6)) == "264864^MDC_DIM_BEAT_PER_MIN^MDC"
    # The start carries the rate and the window that raised it (an acknowledge has no window of its own).
    hr = next(o for o in start.segments("OBX") if "MDC_ECG_HEART_RATE" in str(o(3)))
    assert 120 <= float(str(hr(5))) <= 220  # VT at 170 bpm
    first, last = (parse_time(t) for t in obx_value(start, "Evidence window first and last sample time").split("^"))
    assert 0 < last - first <= 10_000_000_000
    assert abs(time.time_ns() - parse_time(str(start.segment("MSH")(7)))) < 600e9
