"""A flood of junk on the dev broker (issue 13's fairness bound): a fresh Tansu broker and a real worker process,
`beds` healthy beds of MIT-BIH signal at real time; once every bed has vitals, `junk` tiny malformed messages
are sent at once to the waveform topic (or the alert-actions topic, which the worker reads in the same fetches),
keyed over 64 keys so they land on every partition ahead of the beds' chunks. Or (`beds`) valid one-chunk
messages each naming a new bed, as a gateway minting bed ids would send: each is a bed without signal, reported
`signal_lost`.

Measured from Kafka timestamps: the healthy beds' longest pause in vitals from the flood on (and before it, the
baseline), the longest pause in their own input (the replay shares this process: a pause there is not the
worker's), the time from the first junk message to the last dead letter, and false technical alarms.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from streamer.bench.capacity import bench_recording
from streamer.bench.stats import process_usage
from streamer.contract import Alert, Vitals, WaveformChunk, decode_record, encode_waveform_binary
from streamer.replay.plan import ReplayConfig
from streamer.settings import KafkaSettings, TopicSettings

JUNK = (b"not json", b"", b"{", b"[1,2]", b'{"schema_version": 9}', b"ECG1\xff")
KEYS = 64
JunkTopic = Literal["waveform", "actions", "beds"]  # junk on either topic, or new beds on the waveform topic
GHOST = "ghost-"  # the bed ids of a `beds` flood


class JunkFlood(BaseModel):
    beds: int
    junk: int
    topic: JunkTopic = "waveform"  # what was sent where
    hop_s: float
    chunk_ms: float
    junk_send_s: float  # producing every junk message (acks=all)
    handled: int  # dead letters (junk), or new beds reported signal lost (beds)
    all_handled_s: float | None  # first message sent -> the last of them on the broker
    vitals_gap_before_s: float  # healthy beds' longest vitals pause before the flood (baseline)
    vitals_gap_s: float  # ... from the flood until the end
    input_gap_s: float  # healthy beds' longest pause in their own chunks from the flood on
    worker_cpu_ms_per_junk: float | None  # worker CPU (utime+stime) from the flood until all handled, per message
    false_technical_alarms: int  # technical alarms raised on healthy beds from the flood on
    worker_alive: bool


def _max_gap(times: list[float], since: float, until: float) -> float:
    """Longest pause over [since, until] in `times` (the last one before `since` opens it)."""
    marks = [
        max((t for t in times if t < since), default=since),
        *sorted(t for t in times if since <= t <= until),
        until,
    ]
    return max(b - a for a, b in zip(marks, marks[1:], strict=False))


async def _read(kafka: KafkaSettings, topic: str) -> list:
    from streamer.kafka_io import tail

    return [record async for record in tail(kafka, topic, idle_timeout_s=2.0)]


def _messages(kind: JunkTopic, n: int, recording) -> list[tuple[bytes, bytes]]:
    """(key, value) of the flood: junk over KEYS keys, or one valid chunk (a quarter second) per new bed."""
    if kind != "beds":
        return [(f"junk-{j % KEYS}".encode(), JUNK[j % len(JUNK)]) for j in range(n)]
    rate, now = recording.sample_rate_hz, time.time_ns()
    signal = recording.signal_mv[:1, : round(rate / 4)]

    def chunk(bed: str) -> bytes:
        return encode_waveform_binary(WaveformChunk.from_millivolts(
            signal, encoding="int16", bed_id=bed, device_id=f"gw-{bed}", seq=0, start_time_ns=now,
            sample_rate_hz=rate, leads=recording.leads[:1],
        ))  # fmt: skip

    return [(bed.encode(), chunk(bed)) for bed in (f"{GHOST}{j}" for j in range(n))]


async def _handled(kafka: KafkaSettings, topics: TopicSettings, kind: JunkTopic) -> list:
    """The records that dealt with the flood so far: dead letters, or the new beds' signal_lost alarms."""
    if kind != "beds":
        return await _read(kafka, topics.deadletter)
    lost = []
    for record in await _read(kafka, topics.alerts):
        alert = decode_record(record.value, Alert)
        if alert.bed_id.startswith(GHOST) and alert.condition == "signal_lost" and alert.state.value == "raised":  # type: ignore[union-attr]
            lost.append(record)
    return lost


async def _flood(kafka: KafkaSettings, topics: TopicSettings, config: ReplayConfig, junk: int, hop_s: float,
                 recording, pid: int, progress: Callable[[str], None], kind: JunkTopic) -> dict:  # fmt: skip
    from streamer.kafka_io import make_producer
    from streamer.replay.engine import replay

    stop = asyncio.Event()
    streaming = asyncio.create_task(replay([recording], config, kafka, topics.waveform, stop=stop))
    deadline = time.monotonic() + 60
    while len({decode_record(r.value, Vitals).bed_id for r in await _read(kafka, topics.vitals)}) < config.beds:  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            raise RuntimeError("the healthy beds had no vitals within 60 s")
        await asyncio.sleep(1.0)
    await asyncio.sleep(2 * hop_s)  # a baseline
    progress(f"junk flood: {config.beds} beds streaming; sending {junk:,} {kind} messages")
    topic = topics.actions if kind == "actions" else topics.waveform
    producer = make_producer(kafka, linger_ms=5)
    await producer.start()
    started, cpu0 = time.time(), process_usage(pid).cpu_s
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in _messages(kind, junk, recording)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    sent_s = time.time() - started
    handled: list = []
    cpu1 = cpu0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        handled = await _handled(kafka, topics, kind)
        cpu1 = process_usage(pid).cpu_s  # (read before the check: a flood done by the first read counts too)
        if len(handled) >= junk:
            break
        await asyncio.sleep(2.0)
    await asyncio.sleep(2 * hop_s + 2)  # vitals of the windows the flood held back, and a few after
    stop.set()
    await streaming
    return {"started": started, "sent_s": sent_s, "handled": handled, "cpu_s": cpu1 - cpu0,
            "vitals": await _read(kafka, topics.vitals), "alerts": await _read(kafka, topics.alerts),
            "chunks": await _read(kafka, topics.waveform)}  # fmt: skip


def measure_junk_flood(
    bundle: Path,
    beds: int,
    junk: int,
    *,
    backend: str = "torch",
    threads: int = 1,
    chunk_ms: float = 250.0,
    topic: JunkTopic = "waveform",
    workdir: Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> JunkFlood:
    """Fresh broker and worker; `beds` beds at real time; `junk` junk messages at once; outputs read back."""
    from deploy.broker import DevBroker
    from models.bundle import read_manifest
    from streamer.worker.process import WorkerProcess

    spec = read_manifest(bundle).input
    recording = bench_recording(spec.leads[0])
    workdir = workdir or Path(tempfile.mkdtemp(prefix="enecg-bench-junk-"))
    topics = TopicSettings(bed_partitions=8)
    config = ReplayConfig(beds=beds, duration_s=3600, speed=1.0, encoding="int16", chunk_ms=chunk_ms, bed_prefix="ok")
    with DevBroker(topics=topics, log_path=workdir / "tansu-junk.log") as broker:
        kafka = broker.kafka_settings()
        worker = WorkerProcess(kafka, topics, bundle, workdir / "worker-junk.log", backend=backend,
                               extra_args=("--threads", str(threads)))  # fmt: skip
        with worker:
            assert worker.process is not None
            got = asyncio.run(
                _flood(kafka, topics, config, junk, spec.hop_s, recording, worker.process.pid, progress, topic)
            )
            alive = worker.alive
    started, end = got["started"], max(r.timestamp for r in got["vitals"]) / 1e3
    vitals: dict[str, list[float]] = {}
    for r in got["vitals"]:
        vitals.setdefault(decode_record(r.value, Vitals).bed_id, []).append(r.timestamp / 1e3)  # type: ignore[union-attr]
    chunks: dict[bytes, list[float]] = {}
    for r in got["chunks"]:
        if r.key and not r.key.startswith((b"junk-", GHOST.encode())):
            chunks.setdefault(r.key, []).append(r.timestamp / 1e3)
    alerts = [decode_record(r.value, Alert) for r in got["alerts"] if r.timestamp / 1e3 >= started]
    alerts = [a for a in alerts if not a.bed_id.startswith(GHOST)]  # type: ignore[union-attr]  # (their alarms are due)
    first = min(min(t) for t in vitals.values())
    return JunkFlood(
        beds=beds,
        junk=junk,
        topic=topic,
        hop_s=spec.hop_s,
        chunk_ms=chunk_ms,
        junk_send_s=round(got["sent_s"], 2),
        handled=len(got["handled"]),
        all_handled_s=round(max(r.timestamp for r in got["handled"]) / 1e3 - started, 2)
        if len(got["handled"]) >= junk
        else None,
        vitals_gap_before_s=round(max(_max_gap(t, first + 1, started) for t in vitals.values()), 2),
        vitals_gap_s=round(max(_max_gap(t, started, end) for t in vitals.values()), 2),
        input_gap_s=round(max(_max_gap(t, started, end) for t in chunks.values()), 2),
        worker_cpu_ms_per_junk=round(got["cpu_s"] / junk * 1e3, 3) if len(got["handled"]) >= junk else None,
        false_technical_alarms=sum(a.priority.value == "technical" and a.state.value == "raised" for a in alerts),  # type: ignore[union-attr]
        worker_alive=alive,
    )
