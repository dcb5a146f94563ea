"""Operator view of a worker with the broker gone: bounded logs, and SIGTERM ends it within the stated time; a
worker whose model call hangs ends itself."""

from __future__ import annotations

import asyncio
import re
import signal
import time
import uuid
from pathlib import Path

import pytest

from deploy.broker import DevBroker
from streamer.replay.engine import replay
from streamer.replay.plan import ReplayConfig
from streamer.replay.sources import load_recording
from streamer.settings import KafkaSettings, TopicSettings
from streamer.worker.deadline import FORCED_EXIT_STATUS
from streamer.worker.process import WorkerProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]
STOP_TIMEOUT_S = 4.0
OUTAGE_S = 12.0


def test_broker_outage_logs_are_rate_limited_and_sigterm_exits_within_the_bound(
    tmp_path: Path, ci_bundle: Path
) -> None:
    topics = TopicSettings(bed_partitions=2)
    broker = DevBroker(topics=topics, log_path=tmp_path / "tansu.log").start()
    worker = WorkerProcess(
        broker.kafka_settings(), topics, ci_bundle, tmp_path / "worker.log",
        group=f"g-{uuid.uuid4().hex[:8]}", extra_args=("--stop-timeout", str(STOP_TIMEOUT_S)),
    )  # fmt: skip
    try:
        worker.start()
        broker.stop()
        time.sleep(OUTAGE_S)  # aiokafka retries every 100 ms, logging an ERROR line per attempt and per kind
        outage = worker.log_text().split("partitions assigned", 1)[1]
        errors = [line for line in outage.splitlines() if "[ERROR]" in line]
        assert "repeated" in outage, "silenced lines are accounted for"
        assert 0 < len(errors) < 60, f"{len(errors)} ERROR lines in {OUTAGE_S:.0f} s (~800 without the limit)"
        silenced = sum(int(n) for n in re.findall(r"repeated (\d+) more times", outage))
        assert silenced > 50, "the limit did cut a flood, not a trickle"

        assert worker.process is not None
        signalled = time.monotonic()
        worker.process.send_signal(signal.SIGTERM)
        status = worker.process.wait(STOP_TIMEOUT_S + 5)
        took_s = time.monotonic() - signalled
        assert status == FORCED_EXIT_STATUS and took_s < STOP_TIMEOUT_S + 3, (status, took_s)
        assert f"did not stop within {STOP_TIMEOUT_S:.0f} s of SIGTERM" in worker.log_text()
    finally:
        worker.stop(timeout_s=1)
        broker.stop()


def test_sigterm_with_the_broker_up_stops_gracefully_well_within_the_bound(tmp_path: Path, ci_bundle: Path) -> None:
    topics = TopicSettings(bed_partitions=2)
    with DevBroker(topics=topics, log_path=tmp_path / "tansu.log") as broker:
        worker = WorkerProcess(
            broker.kafka_settings(), topics, ci_bundle, tmp_path / "worker.log", group=f"g-{uuid.uuid4().hex[:8]}"
        ).start()
        try:
            assert worker.process is not None
            signalled = time.monotonic()
            worker.process.send_signal(signal.SIGTERM)
            status = worker.process.wait(20)
            took_s = time.monotonic() - signalled
            assert status == 0 and took_s < 10, (status, took_s)
            assert "did not stop within" not in worker.log_text()
        finally:
            worker.stop(timeout_s=1)


def test_a_worker_that_never_gets_ready_is_stopped_not_left_running(tmp_path: Path, ci_bundle: Path) -> None:
    """The bench and the demo start workers with `with`: a start that times out must not orphan the process."""
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1", dev_broker=True)  # nothing listens there
    worker = WorkerProcess(kafka, TopicSettings(bed_partitions=2), ci_bundle, tmp_path / "worker.log")
    with pytest.raises(TimeoutError, match="did not log 'partitions assigned'"):
        worker.start(timeout_s=3)
    assert worker.process is not None and worker.process.poll() is not None, "the worker still runs"


def test_a_model_call_past_the_model_timeout_ends_the_worker_loudly(
    tmp_path: Path, ci_bundle: Path, fixtures_dir: Path
) -> None:
    """A hung runtime or device must not hold beds unwatched: a model call not back within --model-timeout ends
    the process with status 1 and a CRITICAL line, so the group gives its beds to another worker. The real model
    stands in for a hung one by a timeout (0.1 ms) that every real call outlives."""
    topics = TopicSettings(bed_partitions=2)
    with DevBroker(topics=topics, log_path=tmp_path / "tansu.log") as broker:
        kafka = broker.kafka_settings()
        worker = WorkerProcess(
            kafka, topics, ci_bundle, tmp_path / "worker.log", group=f"g-{uuid.uuid4().hex[:8]}",
            extra_args=("--model-timeout", "0.0001"),
        ).start()  # fmt: skip
        try:
            recording = load_recording(fixtures_dir / "mitdb" / "100").select_leads(["MLII"])
            config = ReplayConfig(beds=2, duration_s=12, speed=0, encoding="int16", chunk_ms=500)
            asyncio.run(replay([recording], config, kafka, topics.waveform))
            assert worker.process is not None
            status = worker.process.wait(30)
            assert status == FORCED_EXIT_STATUS, status
            assert "has not returned within 0.0001 s (a hung runtime or device)" in worker.log_text()
        finally:
            worker.stop(timeout_s=1)
