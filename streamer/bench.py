"""Streaming figures for the closing note: in-process pipeline capacity and end-to-end latency on the dev broker.

- **Capacity**: beds served in real time per CPU core. The worker's decode and `Core` (assembler with resampling,
  windows, micro-batcher, model runtime, alarm engine) run in this process on one thread over `beds` beds of real
  MIT-BIH signal replayed as fast as possible; capacity = signal seconds processed per wall second.
- **Latency**: a real worker (child process) on the embedded Tansu broker, `beds` beds replayed at real time.
  Per vitals record: broker timestamp of the record minus the signal time of its window's newest sample. At
  real-time replay that sample was produced at that wall time, so the figure is sample produced -> output
  published, chunking delay included.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from streamer.replay.plan import ReplayConfig, plan_replay
from streamer.replay.sources import Recording, load_recording


class Capacity(BaseModel):
    beds: int
    signal_s_per_bed: float
    threads: int
    wall_s: float
    windows: int
    windows_per_s: float
    beds_realtime_per_core: float
    backend: str


class Latency(BaseModel):
    beds: int
    duration_s: float
    chunk_ms: float
    vitals: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    backend: str


def bench_recording(lead: str) -> Recording:
    from streamer.demo import data_dir

    return load_recording(data_dir() / "mitdb" / "100").select_leads([lead])


def measure_capacity(
    bundle: Path, backend: str = "torch", beds: int = 32, signal_s: float = 60.0, max_batch: int = 32
) -> Capacity:
    """Runs the in-process pipeline over `beds` x `signal_s` of signal on one thread, as fast as it goes."""
    import torch

    from models.bundle import read_manifest
    from models.runtime import open_runtime
    from streamer.batcher import BatcherSettings
    from streamer.contract import WaveformChunk, decode_waveform
    from streamer.metrics import WorkerMetrics
    from streamer.spec import StreamSpec
    from streamer.worker.alarms import AlarmStage
    from streamer.worker.core import Core

    torch.set_num_threads(1)
    manifest = read_manifest(bundle)
    runtime = open_runtime(bundle, backend, threads=1) if backend == "onnx" else open_runtime(bundle, backend)
    spec = StreamSpec.of(manifest.input)
    core = Core(
        runtime,
        AlarmStage(spec, manifest.thresholds, manifest.model_version),
        WorkerMetrics(),
        BatcherSettings(max_batch=max_batch, max_delay_s=0.0),
    )
    config = ReplayConfig(beds=beds, duration_s=signal_s, speed=0, encoding="int16", chunk_ms=500)
    messages = [e.value for e in plan_replay([bench_recording(spec.leads[0])], config) if e.value]
    windows = 0
    started = time.perf_counter()
    for message in messages:  # decode included: it is per-message work of the worker
        chunk = decode_waveform(message)
        assert isinstance(chunk, WaveformChunk)
        core.ingest(chunk, None, "bench", 0)
        while (batch := core.take_batch()) is not None:
            core.conclude(batch, core.predict(batch))
            windows += len(batch.windows)
    wall = time.perf_counter() - started
    return Capacity(
        beds=beds,
        signal_s_per_bed=signal_s,
        threads=1,
        wall_s=round(wall, 2),
        windows=windows,
        windows_per_s=round(windows / wall, 1),
        beds_realtime_per_core=round(beds * signal_s / wall, 1),
        backend=backend,
    )


def measure_latency(
    bundle: Path, backend: str = "torch", beds: int = 100, duration_s: float = 40.0, chunk_ms: float = 250.0
) -> Latency:
    """Starts the dev broker and a worker, replays `beds` beds at real time for `duration_s`, reads vitals."""
    from deploy.broker import DevBroker
    from models.bundle import read_manifest
    from streamer.contract import Vitals, decode_record
    from streamer.kafka_io import tail
    from streamer.replay.engine import replay
    from streamer.settings import TopicSettings
    from streamer.spec import StreamSpec
    from streamer.worker.process import WorkerProcess

    spec = StreamSpec.of(read_manifest(bundle).input)
    topics = TopicSettings(bed_partitions=8)
    workdir = Path(tempfile.mkdtemp(prefix="enecg-bench-"))
    config = ReplayConfig(beds=beds, duration_s=duration_s, speed=1.0, encoding="int16", chunk_ms=chunk_ms)
    recording = bench_recording(spec.leads[0])

    async def run(kafka) -> tuple[list[float], int]:
        # signal time starts now, so a sample's signal time is the wall time it is produced at
        timed = config.model_copy(update={"start_time_ns": time.time_ns()})
        await replay([recording], timed, kafka, topics.waveform)
        lags: list[float] = []
        for _ in range(60):  # until the worker has caught up: no new vitals for a few seconds
            await asyncio.sleep(3.0)
            seen = len(lags)
            lags = []
            async for record in tail(kafka, topics.vitals, idle_timeout_s=2.0):
                vitals = decode_record(record.value, Vitals)
                assert isinstance(vitals, Vitals)
                lags.append(record.timestamp - vitals.window_end_ns / 1e6)
            if lags and len(lags) == seen:
                break
        return lags, len(lags)

    with DevBroker(topics=topics, log_path=workdir / "tansu.log") as broker:
        kafka = broker.kafka_settings()
        with WorkerProcess(kafka, topics, bundle, workdir / "worker.log", backend=backend):
            lags = np.asarray(asyncio.run(run(kafka))[0])
    if lags.size == 0:
        raise RuntimeError(f"no vitals came out of the worker; see {workdir / 'worker.log'}")
    return Latency(
        beds=beds,
        duration_s=duration_s,
        chunk_ms=chunk_ms,
        vitals=int(lags.size),
        p50_ms=round(float(np.percentile(lags, 50)), 1),
        p99_ms=round(float(np.percentile(lags, 99)), 1),
        max_ms=round(float(lags.max()), 1),
        backend=backend,
    )
