"""Alarms end to end on a real Tansu broker: scenario replays raise the right alarm with the right priority in time,
and acknowledging a latched alarm through the actions topic changes its state."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from worker_support import read_all

from deploy.broker import DevBroker, create_topics
from streamer.contract import Alert, AlertAction, AlertState, Priority, decode_record, encode
from streamer.demo import DEFAULT_BUNDLE
from streamer.kafka_io import make_producer
from streamer.replay.engine import replay
from streamer.replay.plan import ReplayConfig
from streamer.replay.scenarios import scenario_recording
from streamer.settings import KafkaSettings, TopicSettings
from streamer.worker.process import WorkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]
LETHAL = {
    "asystole",
    "ventricular_fibrillation",
    "ventricular_tachycardia",
    "extreme_bradycardia",
    "extreme_tachycardia",
}


async def wait_for_alert(kafka: KafkaSettings, topic: str, match, timeout_s: float) -> list[Alert]:
    """All alerts once one matches `match` (or all by the timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        alerts = [decode_record(r.value, Alert) for r in await read_all(kafka, topic)]
        if any(match(a) for a in alerts) or loop.time() > deadline:
            return alerts  # type: ignore[return-value]
        await asyncio.sleep(0.5)


def seconds(alert_time_ns: int, config: ReplayConfig) -> float:
    return (alert_time_ns - config.start_time_ns) / 1e9


#: The bundle for the lethal-timing tests: ENECG_TEST_LETHAL_BUNDLE, else the shipped default one.
LETHAL_BUNDLE = Path(os.environ.get("ENECG_TEST_LETHAL_BUNDLE") or DEFAULT_BUNDLE)
SCENARIO_REPLAY = ReplayConfig(beds=1, speed=6, chunk_ms=500, encoding="int16")


@pytest.fixture(scope="module")
def scenario_alerts(broker: DevBroker, tmp_path_factory: pytest.TempPathFactory) -> list[Alert]:
    """One worker with the best bundle, the asystole (with and without P waves), sinus-VT-sinus and leads-off
    scenarios on four beds (onsets at 30 s, 30 s, 30 s and 20 s): every alert raised."""
    if not (LETHAL_BUNDLE / "manifest.json").exists():
        pytest.skip(
            "lethal-alarm timing needs the trained default bundle (models/bundles/default); "
            "the tiny ci bundle is not accurate enough to name VT and asystole"
        )
    kafka = broker.kafka_settings()
    suffix = uuid.uuid4().hex[:8]
    kinds = ("waveform", "alerts", "vitals", "actions", "deadletter", "bed_settings", "audit")
    topics = TopicSettings(**{n: f"s-{suffix}.{n}" for n in kinds})
    asyncio.run(create_topics(kafka, topics.specs()))
    log = tmp_path_factory.mktemp("scenarios") / "worker.log"
    with WorkerProcess(kafka, topics, LETHAL_BUNDLE, log, group=f"g-{suffix}"):

        async def send_all() -> None:
            sends = []
            for name in ("asystole", "asystole-flat", "sinus-vt-sinus", "leads-off"):
                recording = scenario_recording(name, sample_rate_hz=250.0, leads=["II"])
                bed = SCENARIO_REPLAY.model_copy(update={"bed_prefix": name})
                sends.append(replay([recording], bed, kafka, topics.waveform))
            await asyncio.gather(*sends)
            await asyncio.sleep(8)

        asyncio.run(send_all())
        alerts = [decode_record(r.value, Alert) for r in asyncio.run(read_all(kafka, topics.alerts))]
    return [a for a in alerts if isinstance(a, Alert) and a.state is AlertState.raised]


#: The latest a lethal alarm may come after the scenario's onset at 30 s. Asystole needs 4 s without QRS, counted
#: from the end of the last QRS (which can end ~0.2 s past the onset), and the next window end sees it, up to a
#: hop (2 s) later: the replay starts at a random phase of the bed's window grid, and at the worst phases that is
#: 6.2 s (`enecg evaluate --grid-phases 4`: max 6.18 s; docs/benchmarks.md). One hop later still fails.
LETHAL_BOUND_S = 36.5


def _check_lethal(raised: list[Alert], bed: str, condition: str) -> None:
    """A high-priority `condition` within LETHAL_BOUND_S of the onset at 30 s; no lethal alarm begun in the sinus
    part."""
    mine = [a for a in raised if a.bed_id == bed]
    hits = [a for a in mine if a.condition == condition and a.priority is Priority.high]
    assert hits, f"{bed}: no high-priority {condition}; raised {[(a.condition, a.priority.value) for a in mine]}"
    assert 30.0 <= seconds(hits[0].event_time_ns, SCENARIO_REPLAY) <= LETHAL_BOUND_S
    early = [a.condition for a in mine if a.condition in LETHAL and seconds(a.onset_time_ns, SCENARIO_REPLAY) < 28]
    assert not early, f"{bed}: lethal alarm during sinus: {early}"


def test_vt_raises_a_high_priority_alarm_in_time(scenario_alerts: list[Alert]) -> None:
    _check_lethal(scenario_alerts, "sinus-vt-sinus-001", "ventricular_tachycardia")


def test_asystole_raises_a_high_priority_alarm_in_time(scenario_alerts: list[Alert]) -> None:
    _check_lethal(scenario_alerts, "asystole-001", "asystole")


def test_flat_asystole_is_asystole_not_a_technical_alarm(scenario_alerts: list[Alert]) -> None:
    """Without P waves asystole is a flat line with the electrodes on, close to what leads-off looks like: it must
    raise asystole in time, and no extreme bradycardia as the heart restarts (the pause is no RR interval)."""
    _check_lethal(scenario_alerts, "asystole-flat-001", "asystole")
    mine = [a.condition for a in scenario_alerts if a.bed_id == "asystole-flat-001"]
    assert "extreme_bradycardia" not in mine, mine


def test_leads_off_raises_a_technical_alarm_and_no_rhythm_alarm(scenario_alerts: list[Alert]) -> None:
    off = [a for a in scenario_alerts if a.bed_id == "leads-off-001"]
    assert any(a.priority is Priority.technical and 20 <= seconds(a.event_time_ns, SCENARIO_REPLAY) <= 36 for a in off)
    rhythm = [
        a for a in off if a.priority is not Priority.technical and 20 <= seconds(a.onset_time_ns, SCENARIO_REPLAY) < 30
    ]
    assert not rhythm, f"rhythm alarms while the leads were off: {rhythm}"


def test_acknowledging_a_latched_alarm_changes_its_state(
    broker: DevBroker, kafka: KafkaSettings, topics: TopicSettings, tmp_path
) -> None:
    """A latched lethal alarm (extreme bradycardia in the `brady` scenario) stays raised after the rhythm ends;
    an acknowledge on the actions topic publishes `acknowledged` and then `cleared` for the same alert id.
    Uses the trained bundle: the tiny ci bundle calls most windows noisy, which (rightly) suppresses rhythm alarms."""
    if not (LETHAL_BUNDLE / "manifest.json").exists():
        pytest.skip("needs the trained default bundle (models/bundles/default)")
    config = ReplayConfig(beds=1, speed=10, chunk_ms=500, encoding="int16", bed_prefix="brady")
    recording = scenario_recording("brady", sample_rate_hz=250.0, leads=["II"])

    def latched(a: Alert) -> bool:
        return a.latching and a.state is AlertState.raised

    with WorkerProcess(kafka, topics, LETHAL_BUNDLE, tmp_path / "worker.log", group=f"g-{topics.waveform}"):

        async def scenario() -> tuple[Alert, list[Alert]]:
            await replay([recording], config, kafka, topics.waveform)
            alerts = await wait_for_alert(kafka, topics.alerts, latched, timeout_s=30)
            alarm = next((a for a in alerts if latched(a)), None)
            assert alarm is not None, f"no latched alarm raised: {[(a.condition, a.state) for a in alerts]}"
            assert not [a for a in alerts if a.alert_id == alarm.alert_id and a.state is AlertState.cleared]
            producer = make_producer(kafka)
            await producer.start()
            try:
                action = AlertAction(bed_id=alarm.bed_id, alert_id=alarm.alert_id, action="acknowledge", user="rn-7")
                await producer.send_and_wait(topics.actions, encode(action), key=alarm.bed_id.encode())
            finally:
                await producer.stop()

            def cleared(a: Alert) -> bool:
                return a.alert_id == alarm.alert_id and a.state is AlertState.cleared

            return alarm, await wait_for_alert(kafka, topics.alerts, cleared, timeout_s=20)

        alarm, alerts = asyncio.run(scenario())
    states = [a.state for a in alerts if a.alert_id == alarm.alert_id]
    assert states == [AlertState.raised, AlertState.acknowledged, AlertState.cleared]
