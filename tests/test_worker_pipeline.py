"""The worker on a real Tansu broker with a real bundle: bad input, duplicates, reordering and gaps.

One `enecg worker` child process per test (per-test topics and group); the replay tool produces the input.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from worker_support import bundle_spec, expected_windows, read_all, wait_for_vitals

from deploy.broker import DevBroker, free_port
from streamer.contract import DeadLetter, decode_record
from streamer.replay.engine import replay
from streamer.replay.plan import Faults, Gap, ReplayConfig
from streamer.replay.sources import load_recording
from streamer.settings import KafkaSettings, TopicSettings
from streamer.worker.process import WorkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_bad_input_dead_letters_duplicates_reorder_gap(
    broker: DevBroker, kafka: KafkaSettings, topics: TopicSettings, ci_bundle: Path, fixtures_dir: Path, tmp_path
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
    spec = bundle_spec(ci_bundle)
    expected = expected_windows(config, [recording], spec)

    port = free_port()
    log = tmp_path / "worker.log"
    group = f"g-{topics.waveform}"
    with WorkerProcess(kafka, topics, ci_bundle, log, group=group, extra_args=("--metrics-port", str(port))) as worker:
        summary = asyncio.run(replay([recording], config, kafka, topics.waveform))
        assert summary.corrupted > 0 and summary.duplicated > 0 and summary.reordered > 0 and summary.gap_chunks > 0
        vitals = asyncio.run(wait_for_vitals(kafka, topics.vitals, expected, timeout_s=60))
        assert worker.alive, worker.log_text()[-2000:]
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()

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
    assert metric(metrics, "enecg_dead_letters_total") == summary.corrupted
    assert metric(metrics, "enecg_windows_total") >= len(seen)
    assert metric(metrics, "enecg_beds_active") == config.beds


def test_input_is_taken_a_fetch_interval_at_a_time_and_whole(
    broker: DevBroker, kafka: KafkaSettings, topics: TopicSettings, ci_bundle: Path, fixtures_dir: Path, tmp_path
) -> None:
    """Chunks arriving all the time (2 beds at real time, 100 ms chunks: 20 a second) are handed over at most
    one fetch per interval (500 ms here; unpaced, the dev broker answers a fetch at once while records wait: some
    ten fetches a second), every one of them, and every window is analysed."""
    recording = load_recording(fixtures_dir / "mitdb" / "100").select_leads(["MLII"])
    config = ReplayConfig(beds=2, duration_s=8, speed=1, encoding="int16", chunk_ms=100, seed=3)
    expected = expected_windows(config, [recording], bundle_spec(ci_bundle))
    port = free_port()
    args = ("--metrics-port", str(port), "--fetch-interval-ms", "500")
    with WorkerProcess(
        kafka, topics, ci_bundle, tmp_path / "worker.log", group=f"g-{topics.waveform}", extra_args=args
    ):
        summary = asyncio.run(replay([recording], config, kafka, topics.waveform))
        asyncio.run(wait_for_vitals(kafka, topics.vitals, expected, timeout_s=60))
        deadline = time.monotonic() + 10  # the last chunks complete no window: they may come a fetch after it
        while True:
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            if metric(metrics, "enecg_fetch_records_sum") >= summary.messages_sent or time.monotonic() > deadline:
                break
            time.sleep(0.2)

    assert metric(metrics, "enecg_fetch_records_sum") == summary.messages_sent
    assert metric(metrics, "enecg_fetch_records_count") <= summary.elapsed_s / 0.5 + 3


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not exported"
    return float(match[1])
