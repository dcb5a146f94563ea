"""End to end on the dev broker: a fresh Tansu broker and a real worker process (`enecg worker`), `beds` beds of
MIT-BIH signal replayed at real time, every vitals and alert record read back as it is published.

Latency of a record = its Kafka timestamp (the worker's producer stamps it when the record is sent) minus the
signal time of the newest sample of its window. The replay's signal clock starts with the replay, so that
sample was produced at that wall time: the figure is sample produced -> record published, including the
device's chunking (a bed sends each chunk up to one chunk after its last sample: the replay's phase).
The worker's (and the broker's) CPU (utime+stime) and RSS come from /proc/<pid> while it runs; the model's own
share of the worker's CPU and the batch sizes from the worker's /metrics, read before and after the replay.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from streamer.bench.capacity import bench_recording
from streamer.bench.stats import Percentiles, ProcessUsage, percentiles, process_usage
from streamer.contract import Alert, AlertState, Priority, Vitals, decode_record
from streamer.replay.plan import ReplayConfig
from streamer.replay.sources import Recording
from streamer.settings import KafkaSettings, TopicSettings

IDLE_S = 2.0  # the worker's idle CPU and RSS are read over this long before the replay
EXPORT_READY_S = 600.0  # a worker that exports its model to ONNX at start holds its partitions within this long


class EndToEnd(BaseModel):
    beds: int
    backend: str
    threads: int
    duration_s: float  # signal seconds per bed, replayed at real time
    chunk_ms: float
    vitals: int
    alerts: int  # alert records with a window in their evidence (a stream's end raises others, windowless)
    vitals_latency_ms: Percentiles | None
    alerts_latency_ms: Percentiles | None  # alerts with a window in their evidence
    #: vitals p99 of the first and of the last third of the replay (by window end): a worker keeping up holds it,
    #: one falling behind grows it
    p99_thirds_ms: tuple[float, float] | None = None
    technical_beds: dict[str, int] = {}  # technical condition raised -> beds that raised it (analysis_delayed: behind)
    worker_cpu_s: float  # from the replay's start until its vitals stopped growing
    worker_cores: float  # worker_cpu_s / that wall time: cores the worker kept busy
    worker_idle_cores: float  # before the replay: the cost of an idle worker (polling, timers)
    broker_cores: float | None  # the Tansu broker over the same time (it shares the 2 cores)
    cpu_ms_per_bed_s: float  # CPU ms per bed per second of signal (= thousandths of a core per bed)
    model_cpu_ms_per_bed_s: float  # of which the model calls (the inference thread's CPU, from /metrics)
    mean_batch: float  # windows per model call
    skipped_pct: float = 0.0  # of the windows cut, those a worker behind skipped (--skip-behind)
    full_gcs: int = 0  # full garbage collections in the worker during the replay (collector.py)
    full_gc_ms: float = 0.0  # the time they took, together (every thread running Python waits)
    rss_idle_mb: float
    rss_peak_mb: float
    rss_per_bed_mb: float  # (peak - idle) / beds
    startup_s: float  # worker start until it held its partitions


async def _read(kafka: KafkaSettings, topic: str, kind: type[Vitals] | type[Alert]) -> list[tuple[int, Any]]:
    """(Kafka timestamp ms, record) of every record of `topic`."""
    from streamer.kafka_io import tail

    return [(r.timestamp, decode_record(r.value, kind)) async for r in tail(kafka, topic, idle_timeout_s=2.0)]


def _latencies(records: list[tuple[int, Any]]) -> list[tuple[int, float]]:
    """(window end ns, latency ms) of every record with a window; latency = its Kafka timestamp - its window's
    end."""
    lags = []
    for timestamp, value in records:
        end_ns = value.evidence.window_end_ns if isinstance(value, Alert) else getattr(value, "window_end_ns", None)
        if end_ns is not None:
            lags.append((end_ns, timestamp - end_ns / 1e6))
    return lags


def _p99_thirds(lags: list[tuple[int, float]]) -> tuple[float, float] | None:
    """p99 latency of the records whose windows end in the first third of the replay's span, and in the last."""
    if len(lags) < 3:
        return None
    ends = np.array([end for end, _ in lags], dtype=np.int64)
    ms = np.array([lag for _, lag in lags])
    first, last = np.quantile(ends, [1 / 3, 2 / 3])
    return float(np.percentile(ms[ends <= first], 99)), float(np.percentile(ms[ends >= last], 99))


def _technical_beds(alerts: list[tuple[int, Alert]], before_ns: int) -> dict[str, int]:
    """Technical condition -> how many beds raised it with an onset before ``before_ns`` (signal time; the
    replay's end raises signal_lost on every bed, rightly, and is left out)."""
    beds: dict[str, set[str]] = {}
    for _, alert in alerts:
        if (
            alert.priority is Priority.technical
            and alert.state is AlertState.raised
            and alert.onset_time_ns < before_ns
        ):
            beds.setdefault(alert.condition, set()).add(alert.bed_id)
    return {condition: len(raised) for condition, raised in sorted(beds.items())}


def _worker_counters(port: int) -> tuple[float, float, float, float, float, float]:
    """(model CPU s, windows, model calls, windows skipped, full garbage collections, ms in them) so far, from the
    worker's /metrics."""
    from urllib.request import urlopen

    from prometheus_client.parser import text_string_to_metric_families

    with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    values = {s.name: s.value for s in samples if not s.labels}
    full_gc = {s.name: s.value for s in samples if s.labels.get("generation") == "2"}
    return (
        values.get("enecg_inference_cpu_seconds_total", 0.0),
        values.get("enecg_windows_total", 0.0),
        values.get("enecg_batch_size_count", 0.0),
        values.get("enecg_windows_skipped_total", 0.0),
        full_gc.get("enecg_gc_pause_ms_count", 0.0),
        full_gc.get("enecg_gc_pause_ms_sum", 0.0),
    )


async def _sample(pids: list[int], samples: list[list[ProcessUsage]], every_s: float = 0.25) -> None:
    while True:
        samples.append([process_usage(pid) for pid in pids])
        await asyncio.sleep(every_s)


async def _run(
    kafka: KafkaSettings,
    topics: TopicSettings,
    config: ReplayConfig,
    recording: Recording,
    pids: list[int],
    deadline_s: float,
) -> tuple[list[tuple[int, float]], list[tuple[int, float]], dict[str, int], list[list[ProcessUsage]]]:
    """Replays at real time while sampling usage of `pids`; then reads the outputs once they stop growing.

    Outputs are read after the replay, not tailed during it: on this broker every fetch scans the partition,
    so extra consumers during the run would load the broker the worker depends on.
    Returns vitals and alert latencies, the technical alarms raised while streaming and the usage samples up to
    the read where the vitals stopped growing.
    """
    from streamer.replay.engine import replay

    samples: list[list[ProcessUsage]] = []
    sampler = asyncio.create_task(_sample(pids, samples))
    try:
        # signal time starts now, so a sample's signal time is the wall time it is produced at
        timed = config.model_copy(update={"start_time_ns": time.time_ns()})
        await replay([recording], timed, kafka, topics.waveform)
        ended = time.monotonic()
        vitals: list[tuple[int, float]] = []
        done_at = len(samples)
        while time.monotonic() < ended + deadline_s:
            await asyncio.sleep(1.0)
            seen = _latencies(await _read(kafka, topics.vitals, Vitals))
            if seen and len(seen) == len(vitals):
                break  # nothing new for a read: the worker has caught up
            vitals, done_at = seen, len(samples)
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
    alerts = await _read(kafka, topics.alerts, Alert)
    streamed_until_ns = timed.start_time_ns + round(config.duration_s * 1e9)
    return vitals, _latencies(alerts), _technical_beds(alerts, streamed_until_ns), samples[: max(done_at, 1)]


def _child_pid(name: str) -> int | None:
    """This process's child named `name` (the dev broker), read from /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        if comm == name and int(text[text.rindex(")") + 2 :].split()[1]) == os.getpid():
            return int(stat.parent.name)
    return None


def measure_end_to_end(
    bundle: Path,
    beds: int,
    *,
    backend: str = "torch",
    threads: int = 1,
    duration_s: float = 20.0,
    chunk_ms: float = 250.0,
    workdir: Path | None = None,
    idle_s: float = IDLE_S,
    progress: Callable[[str], None] = lambda _: None,
) -> EndToEnd:
    """Fresh broker and worker for `beds` beds; replays `duration_s` at real time; reads outputs and usage."""
    from deploy.broker import DevBroker, free_port
    from models.bundle import ONNX, read_manifest
    from streamer.worker.process import WorkerProcess

    manifest = read_manifest(bundle)
    spec = manifest.input
    recording = bench_recording(spec.leads[0])
    workdir = workdir or Path(tempfile.mkdtemp(prefix="enecg-bench-"))
    topics = TopicSettings(bed_partitions=8)
    config = ReplayConfig(beds=beds, duration_s=duration_s, speed=1.0, encoding="int16", chunk_ms=chunk_ms)
    with DevBroker(topics=topics, log_path=workdir / f"tansu-{beds}.log") as broker:
        kafka = broker.kafka_settings()
        log_path = workdir / f"worker-{beds}.log"
        metrics_port = free_port()
        args = ("--threads", str(threads), "--metrics-port", str(metrics_port))
        worker = WorkerProcess(kafka, topics, bundle, log_path, backend=backend, extra_args=args)
        exports = backend == "onnx" and ONNX not in manifest.files
        if exports:
            hint = "`enecg compile BUNDLE --backend onnx -o DIR` stores it once"
            progress(f"e2e {beds} beds: the bundle holds no {ONNX}; the worker exports it at start ({hint})")
        started = time.monotonic()
        if exports:
            worker.start(timeout_s=EXPORT_READY_S)
        else:
            worker.start()
        try:
            startup_s = time.monotonic() - started
            assert worker.process is not None
            pid = worker.process.pid
            broker_pid = _child_pid("tansu")
            idle0 = process_usage(pid)
            time.sleep(idle_s)
            idle1 = process_usage(pid)
            progress(f"e2e {beds} beds: worker ready in {startup_s:.1f} s; replaying {duration_s:g} s at real time")
            pids = [pid] if broker_pid is None else [pid, broker_pid]
            counters0 = _worker_counters(metrics_port)
            vitals, alerts, technical, samples = asyncio.run(
                _run(kafka, topics, config, recording, pids, deadline_s=max(30.0, duration_s))
            )
            model_cpu_s, windows, calls, skipped, full_gcs, full_gc_ms = (
                b - a for a, b in zip(counters0, _worker_counters(metrics_port), strict=True)
            )
            worker.kill()  # measured: a graceful Faust stop would only add seconds
        finally:
            worker.stop()
    if not vitals:
        raise RuntimeError(f"no vitals came out of the worker; see {log_path}")
    first, end = samples[0], samples[-1]
    wall_s = max(end[0].at_s - first[0].at_s, 1e-9)
    cpu_s = end[0].cpu_s - first[0].cpu_s
    rss_peak = max(s[0].rss_mb for s in samples)
    return EndToEnd(
        beds=beds,
        backend=backend,
        threads=threads,
        duration_s=duration_s,
        chunk_ms=chunk_ms,
        vitals=len(vitals),
        alerts=len(alerts),
        vitals_latency_ms=percentiles([lag for _, lag in vitals]),
        alerts_latency_ms=percentiles([lag for _, lag in alerts]),
        p99_thirds_ms=_p99_thirds(vitals),
        technical_beds=technical,
        worker_cpu_s=round(cpu_s, 2),
        worker_cores=round(cpu_s / wall_s, 3),
        worker_idle_cores=round((idle1.cpu_s - idle0.cpu_s) / (idle1.at_s - idle0.at_s), 3),
        broker_cores=None if broker_pid is None else round((end[1].cpu_s - first[1].cpu_s) / wall_s, 3),
        cpu_ms_per_bed_s=round(cpu_s / (beds * duration_s) * 1e3, 3),
        model_cpu_ms_per_bed_s=round(model_cpu_s / (beds * duration_s) * 1e3, 3),
        mean_batch=round(windows / calls, 2) if calls else 0.0,
        skipped_pct=round(100 * skipped / (windows + skipped), 1) if windows + skipped else 0.0,
        full_gcs=round(full_gcs),
        full_gc_ms=round(full_gc_ms, 1),
        rss_idle_mb=round(idle1.rss_mb, 1),
        rss_peak_mb=round(rss_peak, 1),
        rss_per_bed_mb=round((rss_peak - idle1.rss_mb) / beds, 3),
        startup_s=round(startup_s, 1),
    )
