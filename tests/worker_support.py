"""Helpers shared by the worker's integration tests (tests/test_worker_*.py)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from models.config import InputSpec
from streamer.assembly import Assembler
from streamer.contract import Vitals, WaveformChunk, decode_record, decode_waveform
from streamer.kafka_io import tail
from streamer.replay.plan import ReplayConfig, plan_replay
from streamer.settings import KafkaSettings


def bundle_spec(bundle: Path) -> InputSpec:
    from models.bundle import read_manifest

    return read_manifest(bundle).input


async def read_all(kafka: KafkaSettings, topic: str) -> list:
    return [record async for record in tail(kafka, topic, idle_timeout_s=2.0)]


async def wait_for_vitals(
    kafka: KafkaSettings, topic: str, expected: dict[str, set[int]], timeout_s: float
) -> list[Vitals]:
    """Vitals records once every expected (bed, window end) has arrived, or what arrived by the timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    wanted = {(bed, end) for bed, ends in expected.items() for end in ends}
    while True:
        vitals = [decode_record(r.value, Vitals) for r in await read_all(kafka, topic)]
        if wanted <= {(v.bed_id, v.window_end_ns) for v in vitals} or loop.time() > deadline:  # type: ignore[union-attr]
            return vitals  # type: ignore[return-value]
        await asyncio.sleep(1.0)


def expected_windows(config: ReplayConfig, recordings: list, spec: InputSpec) -> dict[str, set[int]]:
    """Window ends per bed that the pure assembler cuts from exactly what the replay sends."""
    assembler = Assembler(spec)
    ends: dict[str, set[int]] = {}
    for event in plan_replay(recordings, config):
        if event.value is None:
            continue
        chunk = decode_waveform(event.value)
        if isinstance(chunk, WaveformChunk):
            for window in assembler.push(chunk, chunk.start_time_ns).windows:  # arrives as it is measured
                ends.setdefault(window.bed_id, set()).add(window.window_end_ns)
    for window in assembler.tick(10**19).windows:  # held chunks released, as the worker's timer does
        ends.setdefault(window.bed_id, set()).add(window.window_end_ns)
    return ends


def reference_alerts(bundle: Path, recordings: list, config: ReplayConfig) -> list:
    """The alerts an uninterrupted worker derives from exactly what the replay sends (in process, no broker);
    `signal_lost` is left out: a stall depends on wall-clock silences, not on the input."""
    from models.bundle import read_manifest
    from models.runtime import open_runtime
    from streamer.batcher import BatcherSettings
    from streamer.metrics import WorkerMetrics
    from streamer.worker.alarms import engine_from_manifest
    from streamer.worker.core import Core

    core = Core(
        open_runtime(bundle, "torch"),
        engine_from_manifest(read_manifest(bundle)),
        WorkerMetrics(),
        BatcherSettings(max_batch=32, max_delay_s=0.0),
    )
    alerts = []
    for event in plan_replay(recordings, config):
        chunk = decode_waveform(event.value) if event.value else None
        if not isinstance(chunk, WaveformChunk):
            continue
        alerts += core.ingest(chunk, None, "reference", 0)[1].alerts
        alerts += core.drain().alerts
    return [a for a in alerts if a.condition != "signal_lost"]


def assignments(log_text: str) -> set[int]:
    """Waveform partitions a worker holds, from its log: assigned ones minus revoked ones."""
    held: set[int] = set()
    for line in log_text.splitlines():
        for verb, partitions in re.findall(r"partitions (assigned new|revoked) ?=?\[([0-9, ]*)\]", line):
            numbers = {int(p) for p in partitions.split(",") if p.strip()}
            held = held | numbers if verb == "assigned new" else held - numbers
    return held
