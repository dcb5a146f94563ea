"""Throughput of the HL7 boundaries on this machine: `python -m streamer.hl7.bench` prints a small table.

Everything real and on loopback: a fresh Tansu broker, `AcmReporter` sending to a python-hl7 MLLP peer that
answers AA at once, and `enecg replay --hl7`'s sender feeding `WaveformGateway` (MIT-BIH 100, 250 ms chunks,
2 leads at 360 Hz). Both are one message in flight at a time, as original-mode HL7 acknowledgement is, so
the figure is messages per second per link.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from hl7.mllp import start_hl7_server

from deploy.broker import DevBroker, create_topics
from streamer.contract import Alert, AlertState, Priority, encode, make_alert_id
from streamer.hl7.acm import AcmReporter, Journal
from streamer.hl7.gateway import WaveformGateway
from streamer.hl7.metrics import Hl7Metrics
from streamer.hl7.mllp import MllpLink
from streamer.hl7.replay import send_plan_hl7
from streamer.kafka_io import make_producer
from streamer.replay.engine import ReplaySummary
from streamer.replay.plan import ReplayConfig, plan_replay
from streamer.replay.sources import load_recording
from streamer.settings import Hl7Settings, KafkaSettings, TopicSettings

RECORD = Path(__file__).resolve().parents[2] / "tests/fixtures/mitdb/100"


async def bench_acm(kafka: KafkaSettings, topics: TopicSettings, n: int) -> float:
    """ORU^R40 messages/s from the first ACK to the last (the group join before it is not counted)."""
    onset = time.time_ns()
    producer = make_producer(kafka)
    await producer.start()
    for i in range(n):
        bed = f"bed-{i % 50:03d}"
        alert = Alert(
            alert_id=make_alert_id(bed, "asystole", onset + i),
            bed_id=bed,
            condition="asystole",
            priority=Priority.high,
            state=AlertState.raised,
            onset_time_ns=onset + i,
            event_time_ns=onset + i,
        )
        await producer.send(topics.alerts, encode(alert), key=bed.encode())
    await producer.flush()
    await producer.stop()
    times: list[float] = []

    async def peer(reader, writer) -> None:
        while True:
            try:
                message = await reader.readmessage()
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            times.append(time.perf_counter())
            writer.writemessage(message.create_ack("AA"))
            await writer.drain()

    server = await start_hl7_server(peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Hl7Settings(acm_group=f"bench-{uuid.uuid4().hex[:8]}")
        reporter = AcmReporter(kafka, topics, settings, MllpLink("127.0.0.1", port), Hl7Metrics("b"),
                               Journal(Path(tmp) / "j"))  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(reporter.run(stop))
        while len(times) < n:
            await asyncio.sleep(0.05)
        stop.set()
        await task
    server.close()
    return (n - 1) / (times[-1] - times[0])


async def bench_gateway(kafka: KafkaSettings, topics: TopicSettings, seconds: int) -> tuple[float, int]:
    """ORU^R01 waveform messages/s through `replay --hl7`'s sender into the gateway (ACK after Kafka)."""
    gateway = WaveformGateway(kafka, topics, Hl7Settings(), Hl7Metrics("g"))
    port = await gateway.start("127.0.0.1", 0)
    config = ReplayConfig(speed=0, duration_s=seconds, encoding="int16")
    summary = ReplaySummary(topic="hl7", beds=1, records=["100"], encoding="hl7-int16", speed=0)
    events = plan_replay([load_recording(str(RECORD))], config)
    codes = await send_plan_hl7(events, MllpLink("127.0.0.1", port), summary)
    await gateway.stop()
    assert set(codes) == {"AA"}, codes
    return summary.messages_per_s or 0.0, summary.messages_sent


async def _bench(kafka: KafkaSettings) -> tuple[float, float, int]:
    suffix = uuid.uuid4().hex[:6]
    topics = TopicSettings(waveform=f"b{suffix}.w", alerts=f"b{suffix}.a", vitals=f"b{suffix}.v",
                           actions=f"b{suffix}.x", deadletter=f"b{suffix}.d", bed_partitions=4)  # fmt: skip
    await create_topics(kafka, topics.specs())
    acm = await bench_acm(kafka, topics, 2000)
    gateway, sent = await bench_gateway(kafka, topics, 1805)  # the whole of MIT-BIH 100 (30:05)
    return acm, gateway, sent


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        broker = DevBroker(log_path=Path(tmp) / "tansu.log").start()
        try:
            acm, gateway, sent = asyncio.run(_bench(broker.kafka_settings()))
        finally:
            broker.stop()
    print("| command | messages | messages/s |")
    print("|---|---|---|")
    print(f"| `enecg acm` (ORU^R40 -> peer, AA; offset commit + journal per message) | 2,000 | {acm:,.0f} |")
    print(f"| `enecg replay --hl7` -> `enecg hl7-gateway` (ORU^R01 -> Kafka, then AA) | {sent:,} | {gateway:,.0f} |")


if __name__ == "__main__":
    main()
