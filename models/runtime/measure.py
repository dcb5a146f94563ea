"""Throughput of a runtime on random windows of its input spec (the lead wires this into `enecg bench`)."""

from __future__ import annotations

import statistics
import time

import numpy as np
from pydantic import BaseModel

from models.runtime.base import Runtime


class Throughput(BaseModel):
    backend: str
    batch: int
    n_repeats: int
    median_s_per_batch: float
    best_s_per_batch: float
    windows_per_s: float  # from the median wall time
    windows_per_cpu_s: float  # windows per second of this process's CPU time: robust to other load


def measure_throughput(runtime: Runtime, batch: int = 64, n_repeats: int = 10, warmup: int = 2) -> Throughput:
    """Median wall time of `n_repeats` predict calls at `batch` after `warmup` calls; windows/s from the median.

    Also windows per CPU-second of this process, which holds up when other work shares the cores.
    """
    spec = runtime.input_spec
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((batch, spec.n_leads, spec.n_samples)) * 0.3).astype(np.float32)
    for _ in range(warmup):
        runtime.predict(x)
    times = []
    cpu_start = time.process_time()
    for _ in range(n_repeats):
        start = time.perf_counter()
        runtime.predict(x)
        times.append(time.perf_counter() - start)
    cpu_s = time.process_time() - cpu_start
    median = statistics.median(times)
    return Throughput(
        backend=runtime.backend,
        batch=batch,
        n_repeats=n_repeats,
        median_s_per_batch=median,
        best_s_per_batch=min(times),
        windows_per_s=batch / median,
        windows_per_cpu_s=batch * n_repeats / cpu_s,
    )
