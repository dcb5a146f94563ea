"""The worker on a real Tansu broker with a real bundle: bad input, duplicates, reordering and gaps.

One `enecg worker` child process per test (per-test topics and group); the replay tool produces the input.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path

import pytest

from deploy.broker import DevBroker
from streamer.assembly import Assembler
from streamer.contract import DeadLetter, Vitals, WaveformChunk, decode_record, decode_waveform
from streamer.kafka_io import tail
from streamer.replay.engine import replay
from streamer.replay.plan import Faults, Gap, ReplayConfig, plan_replay
from streamer.replay.sources import load_recording
from streamer.settings import KafkaSettings, TopicSettings
from streamer.spec import StreamSpec
from streamer.worker.process import WorkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@pytest.fixture(scope="session")
def worker_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trainer's `ci` bundle (trained once per session), or ENECG_TEST_BUNDLE when set."""
    if os.environ.get("ENECG_TEST_BUNDLE"):
        return Path(os.environ["ENECG_TEST_BUNDLE"])
    from trainer.recipes import build_ci_bundle

    return build_ci_bundle(tmp_path_factory.mktemp("ci-bundle"))


def bundle_spec(bundle: Path) -> StreamSpec:
    from models.bundle import read_manifest

    return StreamSpec.of(read_manifest(bundle).input)


async def read_all(kafka: KafkaSettings, topic: str) -> list:
    return [record async for record in tail(kafka, topic, idle_timeout_s=2.0)]


async def wait_for_vitals(kafka: KafkaSettings, topic: str, expected: int, timeout_s: float) -> list[Vitals]:
    """Vitals records once at least `expected` arrived (or what arrived by the timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        vitals = [decode_record(r.value, Vitals) for r in await read_all(kafka, topic)]
        if len(vitals) >= expected or loop.time() > deadline:
            return vitals  # type: ignore[return-value]
        await asyncio.sleep(1.0)


def expected_windows(config: ReplayConfig, recordings: list, spec: StreamSpec) -> dict[str, set[int]]:
    """Window ends per bed that the pure assembler cuts from exactly what the replay sends."""
    assembler = Assembler(spec)
    ends: dict[str, set[int]] = {}
    for event in plan_replay(recordings, config):
        if event.value is None:
            continue
        chunk = decode_waveform(event.value)
        if isinstance(chunk, WaveformChunk):
            for window in assembler.push(chunk, 0).windows:
                ends.setdefault(window.bed_id, set()).add(window.window_end_ns)
    for window in assembler.tick(10**19).windows:  # held chunks released, as the worker's timer does
        ends.setdefault(window.bed_id, set()).add(window.window_end_ns)
    return ends


def test_bad_input_dead_letters_duplicates_reorder_gap(
    broker: DevBroker, kafka: KafkaSettings, topics: TopicSettings, worker_bundle: Path, fixtures_dir: Path, tmp_path
) -> None:
    """Corrupt, duplicated, reordered chunks and a gap: the worker stays up, every corrupt message is dead-
    lettered with its reason and origin, duplicates do not double windows, no window spans the gap."""
    recording = load_recording(fixtures_dir / "mitdb" / "100").select_leads(["MLII"])
    gap = Gap(seconds=6, offset_s=15)
    config = ReplayConfig(
        beds=3,
        duration_s=40,
        speed=0,
        encoding="int16",
        chunk_ms=500,
        seed=7,
        faults=Faults(corrupt=0.1, duplicate=0.15, reorder=0.1, gaps=[gap]),
    )
    spec = bundle_spec(worker_bundle)
    expected = expected_windows(config, [recording], spec)
    n_expected = sum(len(v) for v in expected.values())

    with WorkerProcess(kafka, topics, worker_bundle, tmp_path / "worker.log", group=f"g-{topics.waveform}") as worker:
        summary = asyncio.run(replay([recording], config, kafka, topics.waveform))
        assert summary.corrupted > 0 and summary.duplicated > 0 and summary.reordered > 0 and summary.gap_chunks > 0
        vitals = asyncio.run(wait_for_vitals(kafka, topics.vitals, n_expected, timeout_s=60))
        assert worker.alive, worker.log_text()[-2000:]

    letters = [decode_record(r.value, DeadLetter) for r in asyncio.run(read_all(kafka, topics.deadletter))]
    assert len(letters) == summary.corrupted
    for letter in letters:
        assert isinstance(letter, DeadLetter)
        assert letter.reason and letter.original
        assert letter.source_topic == topics.waveform and letter.offset is not None and letter.partition is not None

    seen = Counter((v.bed_id, v.window_end_ns) for v in vitals)
    assert max(seen.values()) == 1, "a window was published twice"
    assert {bed: {end for b, end in seen if b == bed} for bed in expected} == expected
    for v in vitals:  # no window spans the gap of any bed: signal is never invented across it
        gap_start = config.start_time_ns + round(gap.offset_s * 1e9)
        gap_end = gap_start + round(gap.seconds * 1e9)
        assert v.window_end_ns <= gap_start or v.window_start_ns >= gap_end - round(1e9)
