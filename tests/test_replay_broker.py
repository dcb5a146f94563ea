"""Replay through a real Tansu broker, consumed and reassembled: what only a broker can show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import wfdb

from streamer.contract import DeadLetter, WaveformChunk, decode_waveform
from streamer.kafka_io import tail
from streamer.replay.engine import replay
from streamer.replay.plan import Faults, ReplayConfig, plan_beds
from streamer.replay.sources import load_recording
from streamer.settings import KafkaSettings, TopicSettings

pytestmark = pytest.mark.broker


async def consume(kafka: KafkaSettings, topic: str) -> list:
    return [record async for record in tail(kafka, topic, from_beginning=True, idle_timeout_s=5)]


def by_bed(records: list) -> dict[str, list[WaveformChunk]]:
    beds: dict[str, list[WaveformChunk]] = defaultdict(list)
    for record in records:
        chunk = decode_waveform(record.value)
        assert isinstance(chunk, WaveformChunk), chunk
        assert record.key == chunk.bed_id.encode()
        beds[chunk.bed_id].append(chunk)
    return beds


def reassemble(chunks: list[WaveformChunk]) -> np.ndarray:
    chunks = sorted(chunks, key=lambda c: c.seq)
    assert [c.seq for c in chunks] == list(range(len(chunks)))  # contiguous, no duplicates
    starts = [c.start_time_ns for c in chunks]
    assert all(b - a == c.duration_ns for a, b, c in zip(starts, starts[1:], chunks, strict=False))
    return np.concatenate([c.millivolts() for c in chunks], axis=1)  # (l, n)


@pytest.fixture(scope="module")
def physical_100(fixtures_dir: Path) -> np.ndarray:
    """The first 60 s of mitdb/100 as WFDB's own physical signal, (l, n) mV."""
    return wfdb.rdrecord(str(fixtures_dir / "mitdb" / "100"), sampto=60 * 360).p_signal.T


def test_cli_replay_of_mitdb100_int16_is_sample_exact(
    kafka: KafkaSettings, topics: TopicSettings, fixtures_dir: Path, physical_100: np.ndarray
) -> None:
    env = dict(os.environ, ENECG_KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap_servers, ENECG_TOPIC_WAVEFORM=topics.waveform)
    command = [str(Path(sys.executable).parent / "enecg"), "replay", str(fixtures_dir / "mitdb" / "100")]
    command += ["--duration", "60", "--max-speed", "--encoding", "int16", "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["chunks_sent"] == 240 and summary["messages_sent"] == 240

    import asyncio

    beds = by_bed(asyncio.run(consume(kafka, topics.waveform)))
    assert list(beds) == ["bed-001"]
    assert all(c.encoding == "int16" and c.gain == 200.0 for c in beds["bed-001"])
    signal = reassemble(beds["bed-001"])
    assert signal.shape == physical_100.shape and np.array_equal(signal, physical_100)


@pytest.mark.parametrize("encoding", ["binary", "float"])
async def test_replay_of_mitdb100_reassembles(
    kafka: KafkaSettings, topics: TopicSettings, fixtures_dir: Path, physical_100: np.ndarray, encoding: str
) -> None:
    recording = load_recording(fixtures_dir / "mitdb" / "100")
    config = ReplayConfig(encoding=encoding, speed=0, duration_s=60)
    summary = await replay([recording], config, kafka, topics.waveform)
    assert summary.chunks_sent == 240
    records = await consume(kafka, topics.waveform)
    assert all(r.value.startswith(b"ECG1") == (encoding == "binary") for r in records)
    signal = reassemble(by_bed(records)["bed-001"])
    if encoding == "binary":
        assert np.array_equal(signal, physical_100)
    else:
        assert signal.shape == physical_100.shape
        assert np.abs(signal - physical_100).max() <= 1e-6


async def test_fifty_beds_complete_and_each_on_one_partition(
    kafka: KafkaSettings, topics: TopicSettings, fixtures_dir: Path
) -> None:
    recordings = [load_recording(fixtures_dir / "mitdb" / name) for name in ("100", "101")]
    config = ReplayConfig(encoding="binary", speed=0, beds=50, duration_s=30)
    summary = await replay(recordings, config, kafka, topics.waveform)
    assert summary.chunks_sent == 50 * 120
    records = await consume(kafka, topics.waveform)
    partitions: dict[bytes, set[int]] = defaultdict(set)
    for record in records:
        partitions[record.key].add(record.partition)
    assert len(partitions) == 50 and all(len(p) == 1 for p in partitions.values())
    assert len(set().union(*partitions.values())) == topics.bed_partitions  # keys spread over the partitions
    beds = by_bed(records)
    for bed in plan_beds(recordings, config):
        rec = bed.recording
        expected = rec.counts[:, (bed.offset + np.arange(30 * 360)) % rec.n_samples] / rec.gain  # (l, n)
        assert np.array_equal(reassemble(beds[bed.bed_id]), expected), bed.bed_id


async def test_corrupt_messages_become_dead_letters_and_the_rest_decode(
    kafka: KafkaSettings, topics: TopicSettings, fixtures_dir: Path
) -> None:
    recording = load_recording(fixtures_dir / "mitdb" / "101")
    faults = Faults(corrupt=0.3, drop=0.05, duplicate=0.05, reorder=0.05)
    config = ReplayConfig(encoding="int16", speed=0, beds=5, duration_s=20, faults=faults, seed=3)
    summary = await replay([recording], config, kafka, topics.waveform)
    assert summary.corrupted > 0 and len(summary.corruption_kinds) >= 10
    letters, chunks = [], []
    for record in await consume(kafka, topics.waveform):
        decoded = decode_waveform(
            record.value, key=record.key, topic=record.topic, partition=record.partition, offset=record.offset
        )
        (letters if isinstance(decoded, DeadLetter) else chunks).append(decoded)
    assert len(letters) == summary.corrupted
    assert len(chunks) == summary.chunks_sent + summary.duplicated
    for letter in letters:
        assert letter.reason and letter.source_topic == topics.waveform and letter.offset is not None
        assert letter.original_key is not None and letter.original_key.startswith(b"bed-")
    assert all(c.encoding == "int16" and c.n_samples == 90 for c in chunks)


async def test_speed_paces_the_sends(kafka: KafkaSettings, topics: TopicSettings, fixtures_dir: Path) -> None:
    recording = load_recording(fixtures_dir / "mitdb" / "100")
    config = ReplayConfig(encoding="int16", speed=4, beds=2, duration_s=2)
    summary = await replay([recording], config, kafka, topics.waveform)
    assert summary.chunks_sent == 16 and summary.signal_s == 2.0
    assert 0.45 <= summary.elapsed_s < 2.0  # 2 s of signal at 4x is 0.5 s of wall time (+ the last bed's phase)
