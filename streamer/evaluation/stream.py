"""A record through the worker's own in-process pipeline, no broker: replay plan -> decode -> `Core` (assembler,
windows, micro-batcher, runtime) -> the worker's alarm engine (with its beat timeline) -> alerts, vitals.

The chunks are the bytes `enecg replay` would send (``plan_replay``, no faults), decoded as the worker decodes
them, and fed to `streamer.worker.core.Core` exactly as the Kafka edge does; only the broker is missing. The alarm
engine is `CollectingEngine`: the worker's alarm engine, built from the manifest as the worker builds it, which also
keeps every beat its timeline finalises (the timeline itself forgets beats after 40 s).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.bundle import Manifest
from models.config import InputSpec
from models.runtime import Runtime
from streamer.alarms import AlarmEngine, AlarmSettings, WindowOutputs, WindowResult
from streamer.batcher import BatcherSettings
from streamer.contract import Alert, Vitals, WaveformChunk, decode_waveform
from streamer.evaluation.reference import EvalRecord
from streamer.metrics import WorkerMetrics
from streamer.replay.plan import ReplayConfig, bed_ids, plan_replay
from streamer.windows import Window, grid_offset_ns
from streamer.worker.alarms import engine_from_manifest
from streamer.worker.core import Core

#: Signal time of a record's first sample: a multiple of any hop in whole milliseconds (1.6e9 s since the epoch).
T0_NS = 1_600_000_000 * 1_000_000_000


class CollectingEngine(AlarmEngine):
    """The worker's alarm engine, also collecting the beats its timeline finalises.

    After a window ending at ``end``, the timeline only rewrites beats at or after the next window's cut,
    ``end - (window - hop) / 2``, and may drop the one beat just before it (within ``dedup_s``, seen twice):
    beats earlier than ``cut - dedup`` are final and are collected once."""

    def __init__(self, spec: InputSpec, settings: AlarmSettings | None = None, **kwargs: Any) -> None:
        super().__init__(spec, settings, **kwargs)
        self.settle_ns = (spec.window_ns - spec.hop_ns) // 2
        self.beats_ns: list[int] = []
        self._frontier_ns: dict[str, int] = {}
        self._segment: dict[str, int] = {}

    def judge(self, window: Window, outputs: WindowOutputs, wall_ns: int | None = None) -> WindowResult:
        if self._segment.get(window.bed_id) not in (None, window.segment_start_ns):
            self.finish(window.bed_id)  # a gap: the timeline restarts, so its beats so far are final
        self._segment[window.bed_id] = window.segment_start_ns
        result = super().judge(window, outputs, wall_ns)
        self._collect(window.bed_id, window.window_end_ns - self.settle_ns)
        return result

    def finish(self, bed_id: str) -> None:
        """End of the bed's stream (or segment): every beat left on the timeline is final."""
        self._collect(bed_id, None)

    def _collect(self, bed_id: str, upto_ns: int | None) -> None:
        timeline = self.timeline(bed_id)
        if timeline is None:
            return
        if upto_ns is not None:
            upto_ns -= timeline.dedup_ns
        frontier = self._frontier_ns.get(bed_id, -1)
        fresh = [
            b.time_ns for b in timeline.beats if b.time_ns >= frontier and (upto_ns is None or b.time_ns < upto_ns)
        ]
        self.beats_ns.extend(fresh)
        if upto_ns is not None:
            self._frontier_ns[bed_id] = upto_ns
        elif fresh:
            self._frontier_ns[bed_id] = fresh[-1] + 1


@dataclass
class StreamResult:
    """What the stream said about one record; times in seconds from its first sample."""

    record_id: str
    beats_s: np.ndarray
    vitals: list[Vitals] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    windows: int = 0
    chunks: int = 0
    wall_s: float = 0.0
    inference_s: float = 0.0
    start_ns: int = T0_NS  # signal time of the record's first sample

    def t(self, ns: int) -> float:
        return (ns - self.start_ns) / 1e9


def stream_record(
    record: EvalRecord,
    runtime: Runtime,
    manifest: Manifest,
    *,
    chunk_ms: float = 1000.0,
    max_batch: int = 32,
    grid_phase_s: float = 0.0,
) -> StreamResult:
    """Plays ``record`` through `Core` in signal order and returns its beats, vitals and alerts.

    ``grid_phase_s`` starts the record that far after a window-grid point: a live bed's onsets fall anywhere
    between two window ends, so alarm delays are measured over several phases."""
    engine = engine_from_manifest(manifest, engine=CollectingEngine)  # built as the worker builds its engine
    assert isinstance(engine, CollectingEngine)
    core = Core(runtime, engine, WorkerMetrics(), BatcherSettings(max_batch=max_batch, max_delay_s=0.0))
    config = ReplayConfig(chunk_ms=chunk_ms, speed=0, bed_prefix="eval", encoding="float")
    bed_id = bed_ids(config)[0]
    start_ns = T0_NS + grid_offset_ns(bed_id, manifest.input.hop_ns) + round(grid_phase_s * 1e9)  # on its grid
    config = config.model_copy(update={"start_time_ns": start_ns})
    out = StreamResult(record.record_id, np.zeros(0), start_ns=start_ns)
    started = time.perf_counter()

    def drain() -> None:
        drained = core.drain()
        out.alerts += drained.alerts
        out.vitals += drained.vitals
        out.windows += drained.windows
        out.inference_s += drained.inference_s

    for event in plan_replay([record.recording], config):
        chunk = decode_waveform(event.value, key=event.key)
        if not isinstance(chunk, WaveformChunk):
            raise ValueError(f"{record.record_id}: replayed chunk did not decode: {chunk.reason}")
        _, outcome = core.ingest(chunk, None, "evaluate", 0)
        out.alerts += outcome.alerts
        out.chunks += 1
        if core.batch_full:
            drain()
    out.alerts += core.end_of_stream(chunk.bed_id).alerts
    drain()
    engine.finish(chunk.bed_id)
    out.wall_s = time.perf_counter() - started
    out.beats_s = (np.asarray(sorted(set(engine.beats_ns)), dtype=np.int64) - start_ns) / 1e9
    return out
