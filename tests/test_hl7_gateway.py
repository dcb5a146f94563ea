"""`enecg hl7-gateway` against real senders: `enecg replay --hl7` with MIT-BIH 100, and malformed messages."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from streamer.contract import DeadLetter, WaveformChunk, decode_record, decode_waveform
from streamer.hl7.gateway import WaveformGateway
from streamer.hl7.messages import Header, build_waveform
from streamer.hl7.metrics import Hl7Metrics
from streamer.hl7.mllp import MllpLink
from streamer.kafka_io import tail
from streamer.replay.sources import load_recording
from streamer.settings import Hl7Settings, KafkaSettings, TopicSettings

pytestmark = [pytest.mark.broker]
SECONDS = 300  # 5 minutes of MIT-BIH 100 (both leads, 360 Hz): 1,200 messages of 250 ms


async def started_gateway(kafka: KafkaSettings, topics: TopicSettings) -> tuple[WaveformGateway, int]:
    gateway = WaveformGateway(kafka, topics, Hl7Settings(), Hl7Metrics("enecg_hl7_gateway"))
    return gateway, await gateway.start("127.0.0.1", 0)


async def test_replay_hl7_of_mitdb_100_is_sample_exact_on_the_topic(
    kafka: KafkaSettings, topics: TopicSettings, fixtures_dir: Path
) -> None:
    """Both commands as processes: `enecg hl7-gateway` on a free port, fed by `enecg replay --hl7`."""
    env = dict(
        os.environ,
        ENECG_KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap_servers,
        ENECG_KAFKA_DEV_BROKER="true",
        ENECG_TOPIC_WAVEFORM=topics.waveform,
        ENECG_TOPIC_DEADLETTER=topics.deadletter,
    )
    gateway = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamer.cli.main", "hl7-gateway", "--listen", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        assert gateway.stdout is not None
        line = (await asyncio.wait_for(gateway.stdout.readline(), 60)).decode()
        assert line.startswith("enecg hl7-gateway: listening on 127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        command = [sys.executable, "-m", "streamer.cli.main", "replay", str(fixtures_dir / "mitdb/100")]
        command += ["--hl7", f"127.0.0.1:{port}", "--speed", "0", "--duration", str(SECONDS), "--unit", "ICU", "--json"]
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
        )
        out, err = await asyncio.wait_for(process.communicate(), 180)
        assert process.returncode == 0, err.decode()[-2000:]
    finally:
        gateway.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(gateway.wait(), 20) == 0
    summary = json.loads(out)
    n_messages = SECONDS * 4
    assert summary["acks"] == {"AA": n_messages} and summary["chunks_sent"] == n_messages
    print(f"\nreplay --hl7 -> gateway: {summary['messages_per_s']:.0f} messages/s")

    chunks = [decode_waveform(r.value) async for r in tail(kafka, topics.waveform, idle_timeout_s=3)]
    assert all(isinstance(c, WaveformChunk) for c in chunks)
    chunks.sort(key=lambda c: c.seq)
    assert [c.seq for c in chunks] == list(range(n_messages))
    assert {(c.bed_id, c.unit, tuple(c.leads), c.sample_rate_hz) for c in chunks} == {
        ("bed-001", "ICU", ("II", "V5"), 360.0)  # MLII goes out as MDC lead II
    }
    received = np.concatenate(
        [np.frombuffer(c.data, dtype="<i2").reshape(len(c.leads), -1) for c in chunks], axis=1
    )  # (l, s)
    record = load_recording(str(fixtures_dir / "mitdb/100"))
    assert record.counts is not None
    np.testing.assert_array_equal(received, record.counts[:, : SECONDS * 360])  # sample-exact, int16
    assert {c.gain for c in chunks} == {record.gain}
    starts = np.array([c.start_time_ns for c in chunks])
    assert np.all(np.abs(np.diff(starts) - 250_000_000) <= 100_000)  # HL7 times carry 100 µs


async def test_malformed_messages_get_ae_or_ar_and_a_dead_letter(kafka: KafkaSettings, topics: TopicSettings) -> None:
    good = WaveformChunk.from_millivolts(
        np.array([[0.1, 0.2, 0.3, 0.2]]), encoding="int16", bed_id="icu-9", device_id="mon-9", seq=0,
        start_time_ns=1_795_600_000_000_000_000, sample_rate_hz=250.0, leads=["II"],
    )  # fmt: skip
    message = build_waveform(good, Header(), 0)
    cases = {  # message: (expected code, words in the reason)
        message.replace("ORU^R01^ORU_R01", "ADT^A01^ADT_A01"): ("AR", "unsupported message type ADT"),
        message.replace("|20^40^60^40|", "|20^forty^60^40|"): ("AE", "invalid literal"),
        message.replace("|250|", "|10|"): ("AE", "sample_rate_hz"),
        message.replace("PV1|1|I|^^icu-9", "PV1|1|I|"): ("AE", "PV1-3 names no bed"),
        "PID|1|not an HL7 message": ("AR", "not an HL7 v2 message"),
        "MSH|^~\\&|MON": ("AR", "unsupported message type"),  # a header cut short
    }
    gateway, port = await started_gateway(kafka, topics)
    link = MllpLink("127.0.0.1", port)
    try:
        assert (await link.send(message)).code == "AA"
        for bad, (code, words) in cases.items():
            ack = await link.send(bad)
            assert ack.code == code and words in ack.text, (bad[:60], ack)
    finally:
        await link.close()
        await gateway.stop()
    letters = [decode_record(r.value, DeadLetter) async for r in tail(kafka, topics.deadletter, idle_timeout_s=2)]
    assert len(letters) == len(cases)
    for letter, (bad, (code, words)) in zip(letters, cases.items(), strict=True):
        assert letter.reason.startswith(f"HL7 {code}: ") and words in letter.reason
        assert letter.original == bad.encode() and letter.source_topic.startswith("mllp://127.0.0.1:")
    chunks = [decode_waveform(r.value) async for r in tail(kafka, topics.waveform, idle_timeout_s=2)]
    assert len(chunks) == 1 and chunks[0].data == good.data  # only the good one was published


async def test_mllp_over_tls(kafka: KafkaSettings, topics: TopicSettings, tmp_path: Path) -> None:
    """ENECG_HL7_TLS: the gateway serves its certificate; a client that trusts the CA gets its AA, and a link
    without TLS gets no ACK at all."""
    from deploy.dev_certs import make_dev_pki

    pki = make_dev_pki(tmp_path / "pki")
    server = Hl7Settings(tls=True, ssl_certfile=str(pki.server_certfile), ssl_keyfile=str(pki.server_keyfile))
    client = Hl7Settings(tls=True, ssl_cafile=str(pki.cafile))
    gateway = WaveformGateway(kafka, topics, server, Hl7Metrics("enecg_hl7_gateway"))
    port = await gateway.start("127.0.0.1", 0)
    chunk = WaveformChunk.from_millivolts(
        np.array([[0.1, 0.2]]), encoding="int16", bed_id="icu-9", device_id="mon-9", seq=0,
        start_time_ns=1_795_600_000_000_000_000, sample_rate_hz=250.0, leads=["II"],
    )  # fmt: skip
    secure = MllpLink("127.0.0.1", port, ssl_context=client.ssl_context(server=False))
    plain = MllpLink("127.0.0.1", port, timeout_s=2.0)
    try:
        assert (await secure.send(build_waveform(chunk, Header(), 0))).code == "AA"
        with pytest.raises((OSError, TimeoutError, asyncio.IncompleteReadError)):
            await plain.send(build_waveform(chunk, Header(), 0))
    finally:
        await secure.close()
        await plain.close()
        await gateway.stop()
