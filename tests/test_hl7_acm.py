"""`enecg acm` against a real MLLP peer and the session's Tansu broker: ACK handling and faults.

The alerts here are published by the test (contract v1, as the worker publishes them) so each fault is
exercised on a known stream; tests/test_hl7_acm_e2e.py runs the whole path with a real worker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import hl7
import pytest
from hl7_support import (
    Peer,
    acm_settings,
    control_id,
    episodes,
    obx_value,
    publish,
    running_acm,
    wait_until,
)

from streamer.contract import DeadLetter, decode_record
from streamer.hl7.messages import alert_control_id
from streamer.kafka_io import tail
from streamer.settings import KafkaSettings, TopicSettings

pytestmark = [pytest.mark.broker]


def group() -> str:
    return f"acm-{uuid.uuid4().hex[:8]}"


def counts(messages: list[hl7.Message]) -> dict[str, int]:
    seen: dict[str, int] = {}
    for message in messages:
        seen[control_id(message)] = seen.get(control_id(message), 0) + 1
    return seen


async def test_ae_once_then_aa_is_one_delivery(kafka: KafkaSettings, topics: TopicSettings, tmp_path: Path) -> None:
    peer = await Peer(answer=lambda message, n: "AE" if n == 0 else "AA").start()
    alerts = episodes(2)
    await publish(kafka, topics.alerts, alerts)
    settings = acm_settings(peer, group(), tmp_path / "acm.journal")
    async with running_acm(kafka, topics, settings, peer.port) as reporter:
        await wait_until(lambda: len(peer.accepted) == len(alerts), 60, "every alert accepted")
        await asyncio.sleep(1.0)  # nothing more may come
    await peer.stop()
    expected = {alert_control_id(a) for a in alerts}
    assert counts(peer.accepted) == dict.fromkeys(expected, 1)  # each accepted exactly once
    first = control_id(peer.received[0])
    assert control_id(peer.received[1]) == first  # the AE'd message was resent as is, same MSH-10
    assert len(peer.received) == len(alerts) + 1
    assert reporter.metrics.retried.labels("ae")._value.get() == 1
    assert reporter.metrics.acks.labels("AE")._value.get() == 1
    # per bed, in order: start, update (acknowledged), end
    for bed in {a.bed_id for a in alerts}:
        mine = [m for m in peer.accepted if str(m.segment("PV1")(3)).endswith(bed)]
        phases = [obx_value(m, "MDC_ATTR_EVENT_PHASE") for m in mine]
        states = [obx_value(m, "MDC_ATTR_ALARM_STATE") for m in mine]
        inactivation = [obx_value(m, "MDC_ATTR_ALARM_INACTIVATION_STATE") for m in mine]
        assert phases == ["start", "update", "end"]
        assert states == ["active", "active", "inactive"]
        assert inactivation == ["enabled", "acknowledged", "acknowledged"]


async def test_ar_goes_to_the_dead_letter_topic_with_the_reason(
    kafka: KafkaSettings, topics: TopicSettings, tmp_path: Path
) -> None:
    peer = await Peer(answer=lambda message, n: "AR" if n == 1 else "AA").start()
    alerts = episodes(1)
    await publish(kafka, topics.alerts, alerts)
    async with running_acm(kafka, topics, acm_settings(peer, group(), tmp_path / "j"), peer.port) as reporter:
        await wait_until(lambda: len(peer.received) == 3, 60, "three messages")
        await wait_until(lambda: reporter.metrics.dead_lettered._value.get() == 1, 20, "a dead letter")
    await peer.stop()
    assert len(peer.accepted) == 2  # the rejected one is not retried
    letters = [decode_record(r.value, DeadLetter) async for r in tail(kafka, topics.deadletter, idle_timeout_s=2)]
    (letter,) = letters
    assert letter.reason.startswith("alert manager rejected ORU^R40 (AR)")
    assert letter.source_topic == topics.alerts and letter.offset is not None
    assert decode_record(letter.original, type(alerts[1])) == alerts[1]


async def test_peer_down_for_10_s_loses_nothing(kafka: KafkaSettings, topics: TopicSettings, tmp_path: Path) -> None:
    peer = await Peer().start()
    first, later = episodes(2, "a"), episodes(3, "b")
    await publish(kafka, topics.alerts, first)
    async with running_acm(kafka, topics, acm_settings(peer, group(), tmp_path / "j"), peer.port) as reporter:
        await wait_until(lambda: len(peer.accepted) == len(first), 60, "first alerts")
        await peer.stop()
        await publish(kafka, topics.alerts, later)
        await asyncio.sleep(10.0)  # the outage itself: fixed by the scenario, not a wait for a condition
        assert len(peer.accepted) == len(first)
        assert reporter.metrics.retried.labels("link")._value.get() >= 1
        await peer.start()
        await wait_until(lambda: len(peer.accepted) == len(first) + len(later), 60, "alerts after the outage")
        await asyncio.sleep(1.0)
    await peer.stop()
    assert counts(peer.accepted) == dict.fromkeys((alert_control_id(a) for a in first + later), 1)


async def test_killed_mid_stream_and_restarted_no_loss_no_duplicate(
    kafka: KafkaSettings, topics: TopicSettings, tmp_path: Path
) -> None:
    """`enecg acm` as a process, SIGKILLed while alerts flow, then started again with the same group.

    Every state change arrives; none that was decided (ACKed and journalled) is sent again. The one message
    in flight when the kill lands may have reached the peer without its ACK reaching us: that one alone is
    resent, with the same MSH-10 (original-mode HL7 cannot do better; the alert manager drops it by id)."""
    peer = await Peer(delay_s=0.03).start()
    alerts = episodes(20)  # 60 state changes
    await publish(kafka, topics.alerts, alerts)
    env = dict(
        os.environ,
        ENECG_KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap_servers,
        ENECG_KAFKA_DEV_BROKER="true",
        ENECG_TOPIC_ALERTS=topics.alerts,
        ENECG_TOPIC_DEADLETTER=topics.deadletter,
        ENECG_HL7_RETRY_INITIAL_S="0.2",
        ENECG_HL7_RETRY_MAX_S="1",
    )
    command = [sys.executable, "-m", "streamer.cli.main", "acm", "--to", f"127.0.0.1:{peer.port}"]
    command += ["--group", group(), "--journal", str(tmp_path / "acm.journal")]
    log = open(tmp_path / "acm.log", "ab")  # noqa: SIM115
    first = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        await wait_until(lambda: len(peer.accepted) >= 15, 60, "some alerts before the kill")
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = len(peer.accepted)
        in_flight = control_id(peer.received[-1])
        assert killed_at < len(alerts)  # it really was mid-stream
        second = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            await wait_until(lambda: len(peer.accepted) >= len(alerts), 90, "the rest after the restart")
            await asyncio.sleep(2.0)  # nothing more may come
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(20)
    finally:
        if first.poll() is None:
            first.kill()
        log.close()
        await peer.stop()
    print(f"\nkilled after {killed_at} of {len(alerts)} accepted; {len(peer.received)} messages received in all")
    seen = counts(peer.accepted)
    assert set(seen) == {alert_control_id(a) for a in alerts}, (tmp_path / "acm.log").read_text()[-3000:]
    assert {cid for cid, n in seen.items() if n > 1} <= {in_flight}, seen
    assert seen[in_flight] <= 2
