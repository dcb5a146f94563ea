"""One bench run, in a bounded time: capacity (each CPU backend and the naive path) -> scaling (batch size, beds,
hop) -> end to end at each bed count. A part whose estimated time no longer fits the budget is skipped and
named in the report, never cut short silently.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from models.runtime import Backend
from streamer.bench.capacity import batch_cost, pipeline_capacity
from streamer.bench.junk import JunkTopic, measure_junk_flood
from streamer.bench.latency import measure_end_to_end
from streamer.bench.report import NAIVE, BenchReport, HopRow, Machine, hop_rows, speedups

Part = Literal["capacity", "scaling", "e2e", "junk"]
CpuBackend = Literal["torch", "onnx"]
E2E_OVERHEAD_S = 25.0  # broker + worker start (imports, group join), idle reading, drain and stop


class BenchConfig(BaseModel):
    """What to measure and for how long. Defaults: about 2.5 minutes on a 2-core machine."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bundle: Path = Field(description="model bundle directory")
    backends: tuple[CpuBackend, ...] = Field(("torch", "onnx"), min_length=1, description="optimised CPU paths")
    naive: bool = Field(True, description="also the naive path: unmerged LoRA, eager torch, one window per call")
    threads: int = Field(1, ge=1, le=64, description="inference threads (1 = the worker's default: per core)")
    parts: tuple[Part, ...] = Field(("capacity", "scaling", "e2e"), min_length=1)
    capacity_beds: int = Field(32, ge=1, le=2000, description="beds of the capacity runs")
    capacity_cpu_s: float = Field(5.0, gt=0, le=120, description="CPU seconds timed per capacity path")
    max_batch: int = Field(32, ge=1, le=512, description="windows per model call at most (optimised paths)")
    batch_sizes: tuple[int, ...] = Field((1, 4, 16, 32, 64), min_length=1)
    batch_cpu_s: float = Field(1.2, gt=0, le=30, description="CPU seconds per batch size")
    sweep_beds: tuple[int, ...] = Field((1, 10, 100), description="bed counts of the in-process sweep")
    sweep_cpu_s: float = Field(1.5, gt=0, le=60, description="CPU seconds per bed count")
    hops: tuple[float, ...] = Field((1.0, 5.0), description="other hops to extrapolate to (s)")
    e2e_beds: tuple[int, ...] = Field((10, 100), description="bed counts of the end-to-end runs")
    e2e_backend: Backend = "torch"
    e2e_duration_s: float = Field(20.0, ge=5, le=600, description="signal seconds per bed at real time")
    chunk_ms: float = Field(250.0, ge=10, le=10_000, description="chunk length of the end-to-end replay")
    junk_messages: int = Field(10_000, ge=1, le=1_000_000, description="junk messages of the flood part")
    junk_beds: tuple[int, ...] = Field((10,), min_length=1, description="healthy beds streaming through the flood")
    junk_topic: JunkTopic = Field("waveform", description="junk on the waveform or (alert) actions topic, or new beds")
    budget_s: float = Field(180.0, gt=0, description="parts that would not fit are skipped (and reported)")


def _versions() -> tuple[str, str | None]:
    import torch

    try:
        import onnxruntime

        return torch.__version__, onnxruntime.__version__
    except ImportError:
        return torch.__version__, None


def run_bench(config: BenchConfig, progress: Callable[[str], None] = lambda _: None) -> BenchReport:
    import torch

    from models.bundle import read_manifest
    from models.runtime import Runtime, open_runtime
    from streamer.bench.naive import open_naive_runtime

    started = time.monotonic()
    torch.set_num_threads(config.threads)  # as the worker does: oversubscribed threads starve the event loop
    manifest = read_manifest(config.bundle)
    spec = manifest.input
    torch_version, ort_version = _versions()
    report = BenchReport(
        bundle=str(config.bundle),
        model_version=manifest.model_version,
        window_s=spec.window_s,
        hop_s=spec.hop_s,
        threads=config.threads,
        machine=Machine(
            cpus=os.cpu_count() or 0,
            load_before=os.getloadavg(),
            date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            torch=torch_version,
            onnxruntime=ort_version,
        ),
    )
    report.skipped += [f"{part}: not in --parts" for part in ("capacity", "scaling", "e2e") if part not in config.parts]

    runtimes: dict[str, Runtime] = {}
    if {"capacity", "scaling"} & set(config.parts):
        for backend in config.backends:
            progress(
                f"opening {backend} runtime" + (" (exports ONNX when the bundle has none)" if backend == "onnx" else "")
            )
            runtimes[backend] = open_runtime(config.bundle, backend, threads=config.threads)
        if config.naive:
            runtimes[NAIVE] = open_naive_runtime(config.bundle)

    if "capacity" in config.parts:
        for path, runtime in runtimes.items():
            max_batch = 1 if path == NAIVE else config.max_batch
            progress(
                f"capacity {path}: {config.capacity_beds} beds, {config.capacity_cpu_s:g} CPU s, batch <= {max_batch}"
            )
            c = pipeline_capacity(
                runtime,
                manifest,
                path=path,
                beds=config.capacity_beds,
                cpu_s=config.capacity_cpu_s,
                max_batch=max_batch,
            )
            progress(f"  {c.beds_per_core:.0f} beds per core ({c.beds_per_core_wall:.0f} by wall time)")
            report.capacity.append(c)
        report.speedup_vs_naive = speedups(report.capacity)

    if "scaling" in config.parts:
        for path, runtime in runtimes.items():
            sizes = (1,) if path == NAIVE else config.batch_sizes
            progress(f"cost per window, {path}: batch {', '.join(map(str, sizes))}")
            for size in sizes:
                report.batch_costs.append(
                    batch_cost(runtime, path=path, batch=size, hop_s=spec.hop_s, cpu_s=config.batch_cpu_s)
                )
        first = config.backends[0]
        for beds in config.sweep_beds:
            progress(f"beds sweep, {first}: {beds} beds")
            report.bed_sweep.append(
                pipeline_capacity(
                    runtimes[first],
                    manifest,
                    path=first,
                    beds=beds,
                    cpu_s=config.sweep_cpu_s,
                    max_batch=config.max_batch,
                )
            )
        report.hops = _hops(report, first, config)

    if "e2e" in config.parts:
        for beds in config.e2e_beds:
            estimate = config.e2e_duration_s + E2E_OVERHEAD_S
            if time.monotonic() - started + estimate > config.budget_s:
                report.skipped.append(f"e2e {beds} beds: ~{estimate:.0f} s would pass the {config.budget_s:g} s budget")
                progress(f"skipping e2e {beds} beds (budget)")
                continue
            report.end_to_end.append(
                measure_end_to_end(
                    config.bundle,
                    beds,
                    backend=config.e2e_backend,
                    threads=config.threads,
                    duration_s=config.e2e_duration_s,
                    chunk_ms=config.chunk_ms,
                    progress=progress,
                )
            )
            e = report.end_to_end[-1]
            if e.vitals_latency_ms is not None:
                progress(f"  p50 {e.vitals_latency_ms.p50:.0f} ms, p99 {e.vitals_latency_ms.p99:.0f} ms")

    if "junk" in config.parts:  # only on request (not in the default parts): issue 13's fairness bound
        for beds in config.junk_beds:
            progress(f"junk flood: {config.junk_messages:,} junk {config.junk_topic} messages while {beds} beds stream")
            report.junk_floods.append(
                measure_junk_flood(
                    config.bundle,
                    beds,
                    config.junk_messages,
                    backend=config.e2e_backend,
                    threads=config.threads,
                    chunk_ms=config.chunk_ms,
                    topic=config.junk_topic,
                    progress=progress,
                )  # fmt: skip
            )

    report.machine.load_after = os.getloadavg()
    report.elapsed_s = round(time.monotonic() - started, 1)
    return report


def _hops(report: BenchReport, path: str, config: BenchConfig) -> list[HopRow]:
    """Hop extrapolation from the capacity run of `path` (the first optimised backend)."""
    pipeline = next((c for c in report.capacity if c.path == path), None)
    if pipeline is None or pipeline.windows == 0:
        return []
    report.hops_path = path
    return hop_rows(pipeline, report.hop_s, config.hops)
