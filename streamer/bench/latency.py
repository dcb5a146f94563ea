"""End to end on the dev broker: a fresh Tansu broker and a real worker process (`enecg worker`), `beds` beds of
MIT-BIH signal replayed at real time, every vitals and alert record read back as it is published.

Latency of a record = its Kafka timestamp (the worker's producer stamps it when the record is sent) minus the
signal time of the newest sample of its window. The replay's signal clock starts with the replay, so that
sample was produced at that wall time: the figure is sample produced -> record published, including the
device's chunking (a bed sends each chunk up to one chunk after its last sample: the replay's phase).
The worker's CPU (utime+stime) and RSS come from /proc/<pid> while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from streamer.bench.capacity import bench_recording
from streamer.bench.stats import Percentiles, ProcessUsage, percentiles, process_usage
from streamer.contract import Alert, Vitals, decode_record
from streamer.replay.plan import ReplayConfig
from streamer.replay.sources import Recording
from streamer.settings import KafkaSettings, TopicSettings

IDLE_S = 2.0  # the worker's idle CPU and RSS are read over this long before the replay
QUIET_S = 2.0  # after the replay, the run ends once no vitals came for this long


class EndToEnd(BaseModel):
    beds: int
    backend: str
    threads: int
    duration_s: float  # signal seconds per bed, replayed at real time
    chunk_ms: float
    vitals: int
    alerts: int
    vitals_latency_ms: Percentiles | None
    alerts_latency_ms: Percentiles | None  # alerts with a window in their evidence
    worker_cpu_s: float  # during the replay until the last record was out
    worker_cores: float  # worker_cpu_s / that wall time: cores the worker kept busy
    worker_idle_cores: float  # before the replay: the cost of an idle worker (polling, timers)
    cpu_ms_per_bed_s: float  # CPU ms per bed per second of signal (= thousandths of a core per bed)
    rss_idle_mb: float
    rss_peak_mb: float
    rss_per_bed_mb: float  # (peak - idle) / beds
    startup_s: float  # worker start until it held its partitions


async def _collect(
    kafka: KafkaSettings, topic: str, kind: type[Vitals] | type[Alert], lags: list[float], arrivals: list[float]
) -> None:
    """Latency of every record of `topic` with a window, and when each arrived here."""
    from streamer.kafka_io import tail

    async with contextlib.aclosing(tail(kafka, topic, follow=True)) as records:
        async for record in records:
            value = decode_record(record.value, kind)
            end_ns = value.evidence.window_end_ns if isinstance(value, Alert) else getattr(value, "window_end_ns", None)
            arrivals.append(time.monotonic())
            if end_ns is not None:
                lags.append(record.timestamp - end_ns / 1e6)


async def _sample(pid: int, samples: list[ProcessUsage], every_s: float = 0.25) -> None:
    while True:
        samples.append(process_usage(pid))
        await asyncio.sleep(every_s)


async def _run(
    kafka: KafkaSettings,
    topics: TopicSettings,
    config: ReplayConfig,
    recording: Recording,
    pid: int,
    quiet_s: float,
    deadline_s: float,
) -> tuple[list[float], list[float], ProcessUsage, ProcessUsage, float]:
    """Replays at real time while collecting outputs and the worker's usage; ends once outputs stop coming."""
    from streamer.replay.engine import replay

    vitals: list[float] = []
    alerts: list[float] = []
    arrivals: list[float] = []  # of vitals only: the replay's end itself raises a technical alert later
    samples: list[ProcessUsage] = []
    tasks = [
        asyncio.create_task(_collect(kafka, topics.vitals, Vitals, vitals, arrivals)),
        asyncio.create_task(_collect(kafka, topics.alerts, Alert, alerts, [])),
        asyncio.create_task(_sample(pid, samples)),
    ]
    try:
        # signal time starts now, so a sample's signal time is the wall time it is produced at
        timed = config.model_copy(update={"start_time_ns": time.time_ns()})
        await replay([recording], timed, kafka, topics.waveform)
        ended = time.monotonic()
        while time.monotonic() < ended + deadline_s:
            last = arrivals[-1] if arrivals else ended
            if time.monotonic() - max(last, ended) > quiet_s:
                break
            await asyncio.sleep(0.25)
        samples.append(process_usage(pid))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    last = arrivals[-1] if arrivals else samples[-1].at_s
    end = next(s for s in samples if s.at_s >= last)  # first reading after the last record arrived
    return vitals, alerts, samples[0], end, max(s.rss_mb for s in samples)


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
    from deploy.broker import DevBroker
    from models.bundle import read_manifest
    from streamer.spec import StreamSpec
    from streamer.worker.process import WorkerProcess

    spec = StreamSpec.of(read_manifest(bundle).input)
    recording = bench_recording(spec.leads[0])
    workdir = workdir or Path(tempfile.mkdtemp(prefix="enecg-bench-"))
    topics = TopicSettings(bed_partitions=8)
    config = ReplayConfig(beds=beds, duration_s=duration_s, speed=1.0, encoding="int16", chunk_ms=chunk_ms)
    with DevBroker(topics=topics, log_path=workdir / f"tansu-{beds}.log") as broker:
        kafka = broker.kafka_settings()
        log_path = workdir / f"worker-{beds}.log"
        threads_args = ("--threads", str(threads))
        worker = WorkerProcess(kafka, topics, bundle, log_path, backend=backend, extra_args=threads_args)
        started = time.monotonic()
        with worker:
            startup_s = time.monotonic() - started
            assert worker.process is not None
            pid = worker.process.pid
            idle0 = process_usage(pid)
            time.sleep(idle_s)
            idle1 = process_usage(pid)
            progress(f"e2e {beds} beds: worker ready in {startup_s:.1f} s; replaying {duration_s:g} s at real time")
            vitals, alerts, first, end, rss_peak = asyncio.run(
                _run(kafka, topics, config, recording, pid, quiet_s=QUIET_S, deadline_s=max(30.0, duration_s))
            )
            worker.kill()  # measured: a graceful Faust stop would only add seconds
    if not vitals:
        raise RuntimeError(f"no vitals came out of the worker; see {log_path}")
    cpu_s = end.cpu_s - first.cpu_s
    return EndToEnd(
        beds=beds,
        backend=backend,
        threads=threads,
        duration_s=duration_s,
        chunk_ms=chunk_ms,
        vitals=len(vitals),
        alerts=len(alerts),
        vitals_latency_ms=percentiles(vitals),
        alerts_latency_ms=percentiles(alerts),
        worker_cpu_s=round(cpu_s, 2),
        worker_cores=round(cpu_s / max(end.at_s - first.at_s, 1e-9), 3),
        worker_idle_cores=round((idle1.cpu_s - idle0.cpu_s) / (idle1.at_s - idle0.at_s), 3),
        cpu_ms_per_bed_s=round(cpu_s / (beds * duration_s) * 1e3, 3),
        rss_idle_mb=round(idle1.rss_mb, 1),
        rss_peak_mb=round(rss_peak, 1),
        rss_per_bed_mb=round((rss_peak - idle1.rss_mb) / beds, 3),
        startup_s=round(startup_s, 1),
    )
