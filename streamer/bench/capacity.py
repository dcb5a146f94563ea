"""In-process capacity: the worker's own pipeline (decode -> `Core`: assembler with resampling, windows,
micro-batcher, runtime, alarm engine) over real MIT-BIH signal for many beds, as fast as it goes, on this
process's one thread; and the model's cost per window against the batch size.

Capacity = bed-seconds of real time served per CPU second = beds served in real time by one core; a window
serves one hop of its bed. Only the steady state is timed: the replay starts on the hop grid, each bed's first
window of signal (no inference yet) is fed untimed, and timing runs in whole hops, in each of which every bed
completes one window (so the signal fed equals windows x hop). Message encoding (the producer's
work) is never timed; decoding (the worker's) is.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from pydantic import BaseModel

from models.bundle import Manifest
from models.config import InputSpec
from models.runtime import Runtime
from streamer.batcher import BatcherSettings
from streamer.bench.stats import Clock
from streamer.contract import WaveformChunk, decode_waveform
from streamer.metrics import WorkerMetrics
from streamer.replay.plan import Event, ReplayConfig, plan_replay
from streamer.replay.sources import Recording, load_recording
from streamer.worker.alarms import engine_from_manifest
from streamer.worker.core import Core

#: Windows wait for max_batch or the end of the hop, as in a worker at capacity (its max delay < hop): a batch
#: holds at most one window per bed.
HOP_DELAY_S = 3600.0
ALIGNED_EPOCH_NS = 1_700_000_000 * 10**9


class Capacity(BaseModel):
    path: str  # e.g. "torch", "onnx", "naive"
    backend: str  # the runtime's backend name
    max_batch: int
    beds: int
    chunk_ms: float
    signal_s: float  # bed-seconds of signal fed in the timed part
    served_s: float  # windows x hop: bed-seconds of real time those windows serve (= signal_s when aligned)
    windows: int
    mean_batch: float
    cpu_s: float
    window_cpu_s: float  # of cpu_s, in the model and the alarm engine: the cost that comes per window
    model_cpu_s: float  # of window_cpu_s, in the model calls alone
    wall_s: float
    beds_per_core: float  # served_s / cpu_s: beds served in real time by one core
    beds_per_core_wall: float  # served_s / wall_s: the same from wall time (lower when the cores are shared)
    path_ms_per_bed_s: float  # CPU ms per bed-second outside the model calls: the path around the model
    windows_per_cpu_s: float


def bench_recording(lead: str) -> Recording:
    """MIT-BIH 100, one lead: the signal every capacity and latency run replays."""
    from streamer.demo import data_dir

    return load_recording(data_dir() / "mitdb" / "100").select_leads([lead])


def _events(recording: Recording, spec: InputSpec, beds: int, chunk_ms: float) -> Iterator[Event]:
    """The replay's messages, its start on the hop grid: every bed's first window ends within one hop after
    `first_end_s(spec)` (each bed's grid sits at its own offset in the hop) and one more each hop after that."""
    start_ns = spec.hop_ns * (ALIGNED_EPOCH_NS // spec.hop_ns)
    config = ReplayConfig(
        beds=beds, duration_s=3600.0, speed=0, encoding="int16", chunk_ms=chunk_ms, start_time_ns=start_ns
    )
    return (e for e in plan_replay([recording], config) if e.value is not None)


def first_end_s(spec: InputSpec) -> float:
    """Signal seconds from a grid-aligned start to each bed's first window end."""
    return math.ceil(spec.window_s / spec.hop_s - 1e-9) * spec.hop_s


def warm_up(runtime: Runtime, batch: int) -> None:
    """First calls allocate (and ONNX Runtime plans); keep them out of any timing."""
    spec = runtime.input_spec
    x = np.zeros((batch, spec.n_leads, spec.n_samples), dtype=np.float32)
    runtime.predict(x)
    runtime.predict(x[:1])


def pipeline_capacity(
    runtime: Runtime,
    manifest: Manifest,
    *,
    path: str,
    beds: int = 32,
    cpu_s: float = 5.0,
    max_batch: int = 32,
    chunk_ms: float = 500.0,
    recording: Recording | None = None,
) -> Capacity:
    """Feeds `beds` beds through a fresh `Core` until about `cpu_s` CPU seconds are timed (wall capped at 3x)."""
    spec = manifest.input
    recording = recording or bench_recording(spec.leads[0])
    core = Core(
        runtime,
        engine_from_manifest(manifest),
        WorkerMetrics(),
        BatcherSettings(max_batch=max_batch, max_delay_s=HOP_DELAY_S),
    )
    warm_up(runtime, max_batch)
    events = _events(recording, spec, beds, chunk_ms)
    first_end = first_end_s(spec)
    clock, window_clock, windows, batches, signal_s, model_cpu_s = Clock(), Clock(), 0, 0, 0.0, 0.0

    def run_batches(flush: bool = False) -> None:
        nonlocal windows, batches, model_cpu_s
        with window_clock:
            drained = core.drain(flush)  # flush: the hop's last, partial batch
        windows, batches = windows + drained.windows, batches + drained.batches
        model_cpu_s += drained.inference_cpu_s

    def feed(block: list[bytes]) -> float:
        fed = 0.0
        for message in block:
            chunk = decode_waveform(message)
            assert isinstance(chunk, WaveformChunk)
            core.ingest(chunk, None, "bench", 0)
            fed += chunk.n_samples / chunk.sample_rate_hz
            run_batches()
        return fed

    prefill: list[bytes] = []  # untimed, not counted: up to and including each bed's first window
    block: list[bytes] = []
    boundary = first_end + 2 * spec.hop_s
    for event in events:
        assert event.value is not None
        if event.due_s < first_end + spec.hop_s:
            prefill.append(event.value)
            continue
        if prefill:
            feed(prefill)
            run_batches(flush=True)
            prefill, windows, batches, model_cpu_s, window_clock = [], 0, 0, 0.0, Clock()
        if event.due_s >= boundary:  # every bed has just completed one more window
            with clock:
                signal_s += feed(block)
                run_batches(flush=True)  # max delay < hop: a batch never waits for a bed's next window
            block = []
            if clock.cpu_s >= cpu_s or clock.wall_s >= 3 * cpu_s:
                break
            boundary += spec.hop_s
        block.append(event.value)
    with clock:
        run_batches(flush=True)
    return Capacity(
        path=path,
        backend=runtime.backend,
        max_batch=max_batch,
        beds=beds,
        chunk_ms=chunk_ms,
        signal_s=round(signal_s, 2),
        served_s=round(windows * spec.hop_s, 2),
        windows=windows,
        mean_batch=round(windows / max(batches, 1), 1),
        cpu_s=round(clock.cpu_s, 3),
        window_cpu_s=round(window_clock.cpu_s, 3),
        model_cpu_s=round(model_cpu_s, 3),
        wall_s=round(clock.wall_s, 3),
        beds_per_core=round(windows * spec.hop_s / clock.cpu_s, 1),
        beds_per_core_wall=round(windows * spec.hop_s / clock.wall_s, 1),
        path_ms_per_bed_s=round((clock.cpu_s - model_cpu_s) / (windows * spec.hop_s) * 1e3, 3),
        windows_per_cpu_s=round(windows / clock.cpu_s, 1),
    )


class BatchCost(BaseModel):
    """The model call alone at one batch size; beds per core at the bundle's hop (one window per bed per hop)."""

    path: str
    batch: int
    calls: int
    cpu_ms_per_window: float
    wall_ms_per_window: float
    beds_per_core: float  # hop_s / cpu s per window: model only, no decode/assembly/alarms


def batch_cost(runtime: Runtime, *, path: str, batch: int, hop_s: float, cpu_s: float = 0.8) -> BatchCost:
    """Repeats predict at `batch` (after a warm-up) until `cpu_s` CPU seconds, at least 3 calls."""
    spec = runtime.input_spec
    x = (np.random.default_rng(0).standard_normal((batch, spec.n_leads, spec.n_samples)) * 0.3).astype(np.float32)
    runtime.predict(x)
    clock, calls = Clock(), 0
    while calls < 3 or (clock.cpu_s < cpu_s and clock.wall_s < 3 * cpu_s):
        with clock:
            runtime.predict(x)
        calls += 1
    per_window = clock.cpu_s / (calls * batch)
    return BatchCost(
        path=path,
        batch=batch,
        calls=calls,
        cpu_ms_per_window=round(per_window * 1e3, 3),
        wall_ms_per_window=round(clock.wall_s / (calls * batch) * 1e3, 3),
        beds_per_core=round(hop_s / per_window, 1) if per_window > 0 else math.inf,
    )
